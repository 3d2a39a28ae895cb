"""/stats: the queue, your place in it, speed, models, device and uptime."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.access import Usage, duration_text
from bot.discord.errors import NO_MENTIONS
from bot.formatting import stats_text
from bot.messages import USAGE_LIMIT, USAGE_LINE

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
        usage = usage_text(await self.bot.service.access.usage(interaction.guild_id))
        await interaction.response.send_message(f"```\n{stats_text(stats, mine=mine, stored=stored)}{usage}\n```",
                                                ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)


def usage_text(usage: Usage | None) -> str:
    """Today's use of the server's token budget, as a line under the stats (empty outside a server)."""
    if usage is None:
        return ""
    limit = "" if usage.limit is None else USAGE_LIMIT.format(limit=f"{usage.limit:,}",
                                                              wait=duration_text(usage.resets_in_s))
    return "\n" + USAGE_LINE.format(used=f"{usage.used:,}", limit=limit)


async def setup(bot: StoryBot) -> None:
    await bot.add_cog(Stats(bot))
