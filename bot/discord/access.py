"""The access rules on Discord: every command, menu and button asks here first (bot/access.py
decides; this module only reads who and where from the interaction)."""

from __future__ import annotations

import discord

from bot.discord.checks import place_of_click
from bot.service import Service

# Managers must always be able to undo a rule that locked them out too.
EXEMPT_COMMANDS = ("access",)


def role_ids_of(interaction: discord.Interaction) -> list[int]:
    """The member's roles (none outside a server)."""
    user = interaction.user
    return [role.id for role in user.roles] if isinstance(user, discord.Member) else []


def exempt(interaction: discord.Interaction) -> bool:
    """Autocomplete suggestions and /access itself are never refused."""
    if interaction.type is discord.InteractionType.autocomplete:
        return True
    command = interaction.command
    return command is not None and command.qualified_name.split(" ")[0] in EXEMPT_COMMANDS


async def check_access(service: Service, interaction: discord.Interaction) -> None:
    """Raise AccessDenied (a UserError saying why) when this member may not use the bot here."""
    if not exempt(interaction):
        await service.access.check(place_of_click(interaction), role_ids_of(interaction))
