"""/compare: the same topic from every backend, one message each."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.checks import place_of
from bot.limits import MAX_TOPIC_CHARS

if TYPE_CHECKING:
    from bot.discord.client import StoryBot


class Compare(commands.Cog):
    """/compare."""

    def __init__(self, bot: StoryBot) -> None:
        self.bot = bot
        self.service = bot.service

    @app_commands.command(name="compare")
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.describe(topic="What every model writes about")
    async def compare(self, interaction: discord.Interaction,
                      topic: app_commands.Range[str, 1, MAX_TOPIC_CHARS]) -> None:
        """The same topic from every model (smollm2, lstm, markov), one message each."""
        await interaction.response.defer(thinking=True)  # Discord's 3-second deadline, always first
        generations = await self.service.compare(place_of(interaction), topic)
        target = self.bot.reply_target(interaction)
        # All are written at once in the engine; shown in order, the first in the deferred reply.
        for generation in generations:
            await self.bot.stream(generation, target)


async def setup(bot: StoryBot) -> None:
    await bot.add_cog(Compare(bot))
