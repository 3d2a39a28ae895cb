"""Stories after the first paragraph: the buttons, /continue, members' own lines, /forget, export."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.checks import in_thread, may_stop, place_of, place_of_click, place_of_message
from bot.discord.errors import HANDLED, NO_MENTIONS, reply_privately
from bot.discord.pages import export_filename, story_markdown
from bot.discord.views import STORIES_COG
from bot.limits import MAX_DIRECTION_CHARS
from bot.messages import NoStory, UserError
from bot.service import Place

if TYPE_CHECKING:
    from bot.discord.client import StoryBot

log = logging.getLogger(__name__)


class Stories(commands.Cog, name=STORIES_COG):
    """Continue, Regenerate and Stop (bot.discord.views.StoryActions), and the story commands."""

    story = app_commands.Group(
        name="story", description="The story of this thread or channel", guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False),
        allowed_installs=app_commands.AppInstallationType(guild=True, user=False))

    def __init__(self, bot: StoryBot) -> None:
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

    # -- buttons ------------------------------------------------------------------------------
    async def continue_clicked(self, interaction: discord.Interaction) -> None:
        """Write the next paragraph into the story's thread (or the channel, without one)."""
        await interaction.response.defer()  # acknowledges the click; nothing is shown yet
        with self._one_click_at_a_time(interaction):
            place = place_of_click(interaction)
            generation = await self.service.continue_story(place)
            if generation.story is not None and interaction.message is not None:
                self.bot.buttons.remember(generation.story.id, interaction.channel_id or 0,
                                          interaction.message.id)
            destination = await self._home(interaction, place)
            await self.bot.stream(generation, self.bot.channel_target(destination, place.conversation_id))

    async def regenerate_clicked(self, interaction: discord.Interaction) -> None:
        """Write the clicked paragraph again, in the same message."""
        await interaction.response.defer()
        with self._one_click_at_a_time(interaction):
            place = place_of_click(interaction)
            story = await self.service.story_here(place)
            latest = self.bot.buttons.latest(story.id)
            if latest is not None and interaction.message is not None and latest[1] != interaction.message.id:
                raise UserError("only the newest paragraph can be written again: use the buttons under it")
            generation = await self.service.regenerate(place)
            await self.bot.stream(generation, self.bot.reply_target(interaction))

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

    # -- commands -----------------------------------------------------------------------------
    @app_commands.command(name="continue")
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.describe(direction="Where the story should go next (optional)")
    @in_thread()
    async def continue_(self, interaction: discord.Interaction,
                        direction: app_commands.Range[str, 1, MAX_DIRECTION_CHARS] | None = None) -> None:
        """Write the next paragraph of this thread's story."""
        await interaction.response.defer(thinking=True)
        generation = await self.service.continue_story(place_of(interaction), direction)
        await self.bot.stream(generation, self.bot.reply_target(interaction))

    @app_commands.command(name="forget")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_messages=True)  # hidden from others; still checked
    @app_commands.allowed_installs(guilds=True, users=False)
    async def forget(self, interaction: discord.Interaction) -> None:
        """Forget the stories of this channel or thread (needs Manage Messages)."""
        removed = await self.service.forget(place_of(interaction))
        await interaction.response.send_message(
            f"Forgotten: {removed} paragraph(s) of history here. New stories start fresh.",
            ephemeral=True, allowed_mentions=NO_MENTIONS)

    @story.command(name="export")
    async def export(self, interaction: discord.Interaction) -> None:
        """Download this thread's story (or this channel's newest) as a Markdown file."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        story = await self.service.story_here(place_of(interaction))
        turns = await self.service.turns(story)
        data = story_markdown(story, turns).encode("utf-8")
        file = discord.File(io.BytesIO(data), filename=export_filename(story))
        await interaction.followup.send(f"The story so far: {len(turns)} part(s).", file=file,
                                        ephemeral=True, allowed_mentions=NO_MENTIONS)

    # -- members' own lines -------------------------------------------------------------------
    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A member's message in a story's thread becomes part of the story."""
        if message.author.bot or not isinstance(message.channel, discord.Thread):
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        text = message.content.strip()
        if not text:  # empty without the message content intent: nothing to add
            return
        try:
            story = await self.service.story_here(place_of_message(message))
        except NoStory:
            return
        await self.service.add_user_turn(story, message.author.id, text)

    async def cog_app_command_error(self, interaction: discord.Interaction,
                                    error: app_commands.AppCommandError) -> None:
        # Level two of three: nothing of this cog's needs more than the bot-wide handler,
        # except that a story that vanished mid-way is worth its own words.
        original: Any = getattr(error, "original", error)
        if isinstance(original, discord.NotFound):
            interaction.extras[HANDLED] = True
            await reply_privately(interaction, "Sorry: that story's thread or message is gone.")


async def setup(bot: StoryBot) -> None:
    await bot.add_cog(Stories(bot))
