"""/write: a paragraph about a topic, streamed into the channel, with a thread for the story."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.checks import place_of
from bot.discord.errors import HANDLED, reply_privately
from bot.discord.pages import thread_name
from bot.limits import MAX_TOPIC_CHARS
from bot.preferences import MAX_STYLE_CHARS
from bot.service import Generation
from cogs.settings import model_suggestions
from models.params import SETTINGS

if TYPE_CHECKING:
    from bot.discord.client import StoryBot

log = logging.getLogger(__name__)

_LENGTH = SETTINGS["max_new_tokens"]
LENGTH_MIN, LENGTH_MAX = int(_LENGTH.minimum or 1), int(_LENGTH.maximum or 1)
MODEL_MAX = int(SETTINGS["model"].maximum or 200)
STRATEGY_CHOICES = [app_commands.Choice(name=s, value=s) for s in SETTINGS["strategy"].choices]
THREAD_ARCHIVE_MINUTES: Final = 1440  # a story thread hides itself after a quiet day
# Said of the options a story keeps for its next paragraphs (bot/story_options.py).
KEPT = " (the story keeps it)"
STYLE_HELP = "The voice: tone, genre, audience, language or point of view"


class Write(commands.Cog):
    """/write."""

    def __init__(self, bot: StoryBot) -> None:
        self.bot = bot
        self.service = bot.service

    # Stories live in server channels and threads, and settings and permissions are per server
    # and channel: in DMs there is nothing to layer them on, so the commands are server-only.
    @app_commands.command(name="write")
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.describe(
        topic="What the paragraph is about (in a story's thread: where the story goes next)",
        model=SETTINGS["model"].description + KEPT,
        strategy=SETTINGS["strategy"].description + KEPT,
        length=SETTINGS["max_new_tokens"].description + " (this paragraph only)",
        style=STYLE_HELP + KEPT,
    )
    @app_commands.choices(strategy=STRATEGY_CHOICES)
    async def write(
        self,
        interaction: discord.Interaction,
        topic: app_commands.Range[str, 1, MAX_TOPIC_CHARS],
        model: app_commands.Range[str, 1, MODEL_MAX] | None = None,
        strategy: str | None = None,
        length: app_commands.Range[int, LENGTH_MIN, LENGTH_MAX] | None = None,
        style: app_commands.Range[str, 1, MAX_STYLE_CHARS] | None = None,
    ) -> None:
        """Write a paragraph about a topic; in a story's thread, write the story's next paragraph."""
        place = place_of(interaction)
        overrides = {"model": model, "strategy": strategy, "max_new_tokens": length, "style": style}
        # Refusals are private: what can be refused (settings, cooldown, a busy queue) is refused
        # before the public "thinking..." exists. The checks are quick (no model, one settings
        # read), so the 3-second deadline is safe; a model still loading never delays the defer.
        await self.service.check_can_start(place, overrides, topic)
        await interaction.response.defer(thinking=True)
        generation = await self.service.write_here(place, topic, overrides)
        message_ids = await self.bot.stream(generation, self.bot.reply_target(interaction))
        if message_ids and generation.turn is not None:
            await self._give_story_a_home(interaction, generation, message_ids[0])

    @write.autocomplete("model")
    async def _models(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return model_suggestions(self.service.models, current)

    async def _give_story_a_home(self, interaction: discord.Interaction, generation: Generation,
                                 first_message_id: int) -> None:
        """A new story in a text channel gets a thread, started from its first message."""
        story = generation.story
        if story is None or generation.kind != "write":
            return
        channel = interaction.channel
        if (generation.place.thread_id is not None or not isinstance(channel, discord.TextChannel)
                or not (await self.service.effective_settings(generation.place)).preferences.story_threads):
            await self.service.attach(story.id, thread_id=generation.place.thread_id,
                                      message_id=first_message_id)
            return
        try:
            thread = await channel.get_partial_message(first_message_id).create_thread(
                name=thread_name(story.topic), auto_archive_duration=THREAD_ARCHIVE_MINUTES)
        except discord.HTTPException as error:  # e.g. no Create Public Threads permission
            log.warning("could not open a thread for story %s: %s", story.id, error)
            await self.service.attach(story.id, message_id=first_message_id)
            return
        await self.service.attach(story.id, thread_id=thread.id, message_id=first_message_id)

    async def cog_app_command_error(self, interaction: discord.Interaction,
                                    error: app_commands.AppCommandError) -> None:
        # Level two of three: a missing channel permission deserves a precise answer.
        original = getattr(error, "original", error)
        if isinstance(original, discord.Forbidden):
            log.warning("missing permission for /write in channel %s: %s", interaction.channel_id, original)
            interaction.extras[HANDLED] = True
            await reply_privately(interaction, "Sorry: I can't post here: I need the Send Messages "
                                               "and Create Public Threads permissions in this channel.")


async def setup(bot: StoryBot) -> None:
    await bot.add_cog(Write(bot))
