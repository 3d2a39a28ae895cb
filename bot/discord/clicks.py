"""What Continue, Regenerate and Stop do when clicked (the buttons are bot/discord/views.py).

The story comes from the button's custom id; buttons posted before ids carried one find it
from where the clicked message is. Which message of a story carries the buttons is read from
the stored turns (their message ids), so it holds across restarts.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

import discord

from bot.discord.access import check_access
from bot.discord.checks import may_stop, place_of_click
from bot.discord.stream import ActiveGenerations, ChannelTarget, InteractionTarget
from bot.messages import FORGOTTEN, NoStory, UserError
from bot.place import Place
from bot.service import Generation, Service


class ClickHost(Protocol):
    """What the clicks need of the bot (a StoryBot): its service, its streams, its channels."""

    service: Service
    active: ActiveGenerations

    async def stream(self, generation: Generation, target: InteractionTarget | ChannelTarget) -> list[int]: ...

    def reply_target(self, interaction: discord.Interaction) -> InteractionTarget: ...

    def channel_target(self, channel: discord.abc.Messageable, channel_id: int) -> ChannelTarget: ...

    async def fetch_channel(self, channel_id: int, /) -> Any: ...

    async def clear_buttons(self, channel_id: int, message_id: int) -> None: ...


class StoryClicks:
    """The bot's answers to clicks on story buttons (bot.discord.views.StoryClickHandler)."""

    def __init__(self, bot: ClickHost) -> None:
        self.bot = bot
        self.service = bot.service
        self._working: set[int] = set()  # clicked messages whose Continue/Regenerate is under way

    @contextlib.contextmanager
    def _one_click_at_a_time(self, interaction: discord.Interaction) -> Iterator[None]:
        """A double click (or two members at once) must not write the same paragraph twice."""
        message_id = interaction.message.id if interaction.message else 0
        if message_id in self._working:
            raise UserError("that paragraph is already being worked on: one moment")
        self._working.add(message_id)
        try:
            yield
        finally:
            self._working.discard(message_id)

    async def check_access(self, interaction: discord.Interaction) -> None:
        """Refuse the click (AccessDenied) when the access rules refuse this member here."""
        await check_access(self.service, interaction)

    async def continue_clicked(self, interaction: discord.Interaction, story_id: int | None) -> None:
        """Write the next paragraph into the story's thread (or the channel, without one)."""
        await interaction.response.defer()  # acknowledges the click; nothing is shown yet
        with self._one_click_at_a_time(interaction):
            place = place_of_click(interaction)
            async with self._forgotten_story_said(interaction):
                generation = await self.service.continue_story(place, story_id=story_id)
            destination = await self._home(interaction, place)
            await self.bot.stream(generation, self.bot.channel_target(destination, place.conversation_id))

    async def regenerate_clicked(self, interaction: discord.Interaction, story_id: int | None) -> None:
        """Write the clicked paragraph again, in the same message."""
        await interaction.response.defer()
        with self._one_click_at_a_time(interaction):
            place = place_of_click(interaction)
            async with self._forgotten_story_said(interaction):
                story = await self.service.story_here(place, story_id)
            latest = await self.service.latest_messages(story)
            if latest and interaction.message is not None and interaction.message.id not in latest:
                raise UserError("only the newest paragraph can be written again: use the buttons under it")
            generation = await self.service.regenerate(place, story_id=story.id)
            await self.bot.stream(generation, self.bot.reply_target(interaction))

    @contextlib.asynccontextmanager
    async def _forgotten_story_said(self, interaction: discord.Interaction) -> AsyncIterator[None]:
        """Buttons are only ever under a story's paragraphs: a click that finds no story means it
        was forgotten. Say so, and take the stale buttons away."""
        try:
            yield
        except NoStory:
            if interaction.message is not None:
                await self.bot.clear_buttons(interaction.channel_id or 0, interaction.message.id)
            raise UserError(FORGOTTEN) from None

    async def stop_clicked(self, interaction: discord.Interaction) -> None:
        """Stop the paragraph being written in the clicked message."""
        generation = self.bot.active.for_message(interaction.message.id) if interaction.message else None
        if generation is None:
            raise UserError("that paragraph is not being written any more")
        if not may_stop(interaction, generation.place.user_id):
            raise UserError("only the member who asked for it (or a moderator) can stop this paragraph")
        generation.cancel()
        await interaction.response.defer()  # the stream itself shows "(stopped)"

    async def _home(self, interaction: discord.Interaction, place: Place) -> discord.abc.Messageable:
        """The thread a story lives in, else the channel the click came from."""
        if place.thread_id is None or place.thread_id == interaction.channel_id:
            return interaction.channel  # type: ignore[return-value]
        guild = interaction.guild
        cached = guild.get_thread(place.thread_id) if guild else None
        if cached is not None:
            return cached
        return await self.bot.fetch_channel(place.thread_id)  # type: ignore[return-value]  # archived
