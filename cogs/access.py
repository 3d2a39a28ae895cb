"""/access allow | block | clear | show: who may use the bot on this server (Manage Server).

The owner's access file adds its own rules, which these commands show but cannot remove.
Refusals everywhere else come from bot/discord/access.py; /access itself is never refused by
them, so managers can always undo a rule that locked them out too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.access import duration_text
from bot.access_file import AccessRules
from bot.discord.checks import place_of
from bot.discord.errors import NO_MENTIONS
from bot.messages import UserError
from bot.storage.access import Rule, TargetKind

if TYPE_CHECKING:
    from bot.discord.client import StoryBot

Target = tuple[TargetKind, int]
MENTION = {"user": "<@{}>", "role": "<@&{}>", "channel": "<#{}>"}  # shown, never pinging (no mentions)
TARGET_HELP = {"user": "A member", "role": "A role", "channel": "A channel (its threads too)"}


def one_target(user: discord.abc.User | None, role: discord.Role | None,
               channel: discord.abc.GuildChannel | discord.Thread | None) -> Target:
    """The one user, role or channel a command names."""
    named: list[Target] = [(kind, thing.id) for kind, thing in (("user", user), ("role", role), ("channel", channel))
                           if thing is not None]
    if len(named) != 1:
        raise UserError("name exactly one user, role or channel")
    return named[0]


def rules_text(rules: AccessRules, own: list[tuple[Rule, TargetKind, int]]) -> str:
    """Every rule in force here, marking those the owner's file sets (which /access cannot undo)."""
    mine = {(rule, kind, target) for rule, kind, target in own}
    lines = []
    for rule, word in (("allow", "allowed"), ("block", "blocked")):
        for kind in ("user", "role", "channel"):
            ids = sorted(getattr(rules, f"{word}_{kind}s"))
            shown = [MENTION[kind].format(i) + ("" if (rule, kind, i) in mine else " (owner)") for i in ids]
            if shown:
                lines.append(f"{word} {kind}s: {', '.join(shown)}")
    return "\n".join(lines) or "No rules: everyone may use the bot everywhere on this server."


@app_commands.guild_only()
@app_commands.allowed_installs(guilds=True, users=False)
@app_commands.default_permissions(manage_guild=True)  # hidden from others; the service checks too
class Access(commands.GroupCog, group_name="access", group_description="Who may use the bot on this server"):
    """The access commands; the service decides who may change them."""

    def __init__(self, bot: StoryBot) -> None:
        self.bot = bot
        self.access = bot.service.access

    async def _set(self, interaction: discord.Interaction, target: Target, rule: Rule | None) -> None:
        answer = await self.access.set_rule(place_of(interaction), target[0], target[1], rule)
        await interaction.response.send_message(answer, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="allow")
    @app_commands.describe(**TARGET_HELP)
    async def allow(self, interaction: discord.Interaction, user: discord.User | None = None,
                    role: discord.Role | None = None, channel: discord.TextChannel | None = None) -> None:
        """Allow a member, role or channel (once anything is allowed, only what is allowed may)."""
        await self._set(interaction, one_target(user, role, channel), "allow")

    @app_commands.command(name="block")
    @app_commands.describe(**TARGET_HELP)
    async def block(self, interaction: discord.Interaction, user: discord.User | None = None,
                    role: discord.Role | None = None, channel: discord.TextChannel | None = None) -> None:
        """Block a member, role or channel from using the bot."""
        await self._set(interaction, one_target(user, role, channel), "block")

    @app_commands.command(name="clear")
    @app_commands.describe(**TARGET_HELP)
    async def clear(self, interaction: discord.Interaction, user: discord.User | None = None,
                    role: discord.Role | None = None, channel: discord.TextChannel | None = None) -> None:
        """Remove this server's rule for a member, role or channel."""
        await self._set(interaction, one_target(user, role, channel), None)

    @app_commands.command(name="show")
    async def show(self, interaction: discord.Interaction) -> None:
        """The rules in force on this server, and today's use of its token budget."""
        place = place_of(interaction)
        rules, own = await self.access.server_rules(place)
        usage = await self.access.usage(place.guild_id)
        budget = "no daily token budget" if usage is None or usage.limit is None else \
            f"daily budget: {usage.used:,} of {usage.limit:,} tokens used today (resets in {duration_text(usage.resets_in_s)})"
        await interaction.response.send_message(f"{rules_text(rules, own)}\n{budget}", ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)


async def setup(bot: StoryBot) -> None:
    await bot.add_cog(Access(bot))
