"""/stats: the queue, your place in it, speed, models, device and uptime."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.errors import NO_MENTIONS
from bot.formatting import stats_text

if TYPE_CHECKING:
    from bot.discord.client import StoryBot


class Stats(commands.Cog):
    """/stats."""

    def __init__(self, bot: StoryBot) -> None:
        self.bot = bot

    @app_commands.command(name="stats")
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    async def stats(self, interaction: discord.Interaction) -> None:
        """How busy the writer is: queue, your position, speed, models, device, uptime."""
        stats = self.bot.service.stats()
        mine = self.bot.active.progress_of(interaction.user.id)
        stored = await self.bot.service.stored()
        await interaction.response.send_message(f"```\n{stats_text(stats, mine=mine, stored=stored)}\n```",
                                                ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)


async def setup(bot: StoryBot) -> None:
    await bot.add_cog(Stats(bot))
