"""Story channels: an endless story where each member's message directs the next paragraph.

`/settings set story_channel on` turns a channel or thread into one. The bot answers one
paragraph at a time per channel: messages that arrive while it writes wait, and are folded into
the next paragraph's direction (two messages, one paragraph). The first message of a channel
without a story starts one, on that message as its topic. The per-member limits and the fair
queue are the service's, as for /continue; a refusal is handed back to the front to tell the
member. Front-agnostic: the Discord front (cogs/story_channel.py) passes messages in and shows
each paragraph.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.formatting import strip_mentions
from bot.limits import MAX_DIRECTION_CHARS, MAX_TOPIC_CHARS
from bot.messages import NoStory, UserError
from bot.place import Place
from bot.service import Generation, Service

log = logging.getLogger(__name__)

FOLD_SEPARATOR = "; "  # between the messages folded into one direction


@dataclass(frozen=True)
class MemberLine:
    """One member's message in a story channel, and how to answer that member privately enough
    (a short reply that goes away, on Discord)."""

    place: Place
    text: str
    tell: Callable[[str], Awaitable[None]]


class StoryChannels:
    """The story channels' waiting messages, and the one writer per channel that answers them."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._waiting: dict[int, list[MemberLine]] = {}  # conversation id -> lines not yet answered
        self._writing: set[int] = set()  # conversations whose writer is under way

    async def is_story_channel(self, place: Place) -> bool:
        """Whether members' messages here direct the story (the story_channel setting)."""
        return (await self.service.effective_settings(place)).preferences.story_channel

    def is_writing(self, conversation_id: int) -> bool:
        """Whether a paragraph is being written (or about to be) for this channel or thread."""
        return conversation_id in self._writing

    async def take(self, line: MemberLine, show: Callable[[Generation], Awaitable[None]]) -> None:
        """Take a member's line as a direction. When no paragraph is being written here, this call
        becomes the channel's writer: it writes and `show`s paragraphs until no line waits; while
        one is being written, the line only waits to be folded into the next."""
        conversation = line.place.conversation_id
        self._waiting.setdefault(conversation, []).append(line)
        if conversation in self._writing:
            return
        self._writing.add(conversation)
        try:
            while lines := self._waiting.pop(conversation, []):
                latest = lines[-1]  # the paragraph is asked for by the latest member: their limits apply
                try:
                    generation = await self._next_paragraph(latest.place, [each.text for each in lines])
                except UserError as error:
                    await latest.tell(f"Sorry: {error}")
                    continue
                await show(generation)
        finally:
            self._writing.discard(conversation)

    async def _next_paragraph(self, place: Place, texts: list[str]) -> Generation:
        try:
            return await self.service.continue_story(place, folded(texts, MAX_DIRECTION_CHARS))
        except NoStory:
            return await self.service.write(place, folded(texts, MAX_TOPIC_CHARS))


def folded(texts: list[str], limit: int) -> str:
    """Members' lines as one direction: mention syntax out, joined in order, and only the latest
    lines that fit within `limit` (the latest alone, however long: the service then refuses it)."""
    lines = [clean for text in texts if (clean := strip_mentions(text))]
    kept = lines[-1:]
    for line in reversed(lines[:-1]):
        if len(FOLD_SEPARATOR.join([line, *kept])) > limit:
            break
        kept.insert(0, line)
    return FOLD_SEPARATOR.join(kept)
