"""Branching from any paragraph ("Continue from here"), writing one again ("Regenerate"), and a
server's stories page by page (/story list): the use cases, for any front that shows messages.

A branch is a story of its own whose first turns are copies of the original's up to the chosen
paragraph, made in one transaction: the original is never touched, and both go on apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.generation import Generation
from bot.input_checks import lives_in
from bot.messages import NOT_A_PARAGRAPH, NOT_THE_LAST, UserError
from bot.place import Place
from bot.service import Service
from bot.storage import Story, StoryListing, Turn

STORIES_PER_PAGE = 8  # a page of /story list stays well inside one Discord message


class NotTheLast(UserError):
    """Only a story's newest paragraph can be written again; the front offers a branch instead."""

    def __init__(self, paragraph: Paragraph) -> None:
        super().__init__(NOT_THE_LAST)
        self.paragraph = paragraph


@dataclass(frozen=True)
class Paragraph:
    """A story's paragraph as a member points at it: its turn, its number among the paragraphs
    the bot wrote (1-based), and whether it is the newest."""

    story: Story
    turn: Turn
    number: int
    newest: bool


@dataclass(frozen=True)
class StoryPage:
    """One page of /story list: its stories, newest first, and where it stands."""

    listings: tuple[StoryListing, ...]
    page: int
    pages: int
    total: int


class Branching:
    """Branch, regenerate a chosen paragraph, list stories: over the service and its storage."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.storage = service.storage

    async def paragraph_shown_by(self, place: Place, message_id: int) -> Paragraph:
        """The paragraph a message of this channel shows; UserError when it shows none."""
        turn = await self.storage.turn_for_message(message_id)
        if turn is None:
            raise UserError(NOT_A_PARAGRAPH)
        return await self._paragraph(place, turn)

    async def paragraph_by_turn(self, place: Place, turn_id: int) -> Paragraph:
        """The paragraph stored as this turn (a "branch instead" button's), if it lives here."""
        turn = await self.storage.get_turn(turn_id)
        if turn is None:
            raise UserError(NOT_A_PARAGRAPH)
        return await self._paragraph(place, turn)

    async def _paragraph(self, place: Place, turn: Turn) -> Paragraph:
        story = await self.storage.get_story(turn.story_id)
        if story is None or not lives_in(story, place) or turn.kind == "user":
            raise UserError(NOT_A_PARAGRAPH)
        generated = [t for t in await self.storage.turns(story.id) if t.kind != "user"]
        number = next(i for i, t in enumerate(generated, 1) if t.id == turn.id)
        return Paragraph(story, turn, number, newest=number == len(generated))

    async def branch(self, place: Place, paragraph: Paragraph, channel_id: int) -> Story:
        """A new story started by this member in `channel_id`, holding the story so far up to
        `paragraph`. Refused first, like any new paragraph, when one could not be written now
        (cooldown, a busy queue, the server's budget), so no empty branch is left behind."""
        await self.service.check_can_start(place)
        branch, _ = await self.storage.branch_story(
            paragraph.story.id, paragraph.turn.position, guild_id=place.guild_id, channel_id=channel_id,
            author_id=place.user_id)
        return branch

    async def abandon(self, branch: Story) -> None:
        """Undo a branch that never got a home (its thread could not be opened)."""
        await self.storage.delete_story(branch.id)

    async def continue_branch(self, place: Place, branch: Story, thread_id: int | None) -> Generation:
        """The branch's next paragraph, written where the branch now lives."""
        here = replace(place, channel_id=branch.channel_id, thread_id=thread_id)
        return await self.service.continue_story(here, story_id=branch.id)

    async def regenerate(self, place: Place, paragraph: Paragraph) -> Generation:
        """Write `paragraph` again, when it is its story's newest (else NotTheLast, so the front
        can offer a branch). The service checks who may: the story's starter or Manage Messages."""
        if not paragraph.newest:
            raise NotTheLast(paragraph)
        return await self.service.regenerate(place, story_id=paragraph.story.id)

    async def story_page(self, guild_id: int, page: int,
                         visible: Callable[[Story], bool] = lambda story: True) -> StoryPage:
        """Page `page` (1-based, clamped) of this server's stories that `visible` lets the member
        see (a story in a channel hidden from them stays hidden here too), newest first."""
        if page < 1:
            page = 1
        shown = [listing for listing in await self.storage.stories_in_guild(guild_id) if visible(listing.story)]
        pages = max(1, math.ceil(len(shown) / STORIES_PER_PAGE))
        page = min(page, pages)
        start = (page - 1) * STORIES_PER_PAGE
        return StoryPage(tuple(shown[start:start + STORIES_PER_PAGE]), page, pages, len(shown))
