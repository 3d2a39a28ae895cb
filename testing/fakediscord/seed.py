"""The standard test guild: two text channels, a Mod role, an admin, a regular user and the bot."""

from __future__ import annotations

from dataclasses import dataclass

from . import permissions
from .models import FakeChannel, FakeGuild, FakeRole, FakeUser
from .world import World

# Mods can manage channels, messages and the guild; @everyone keeps Discord's defaults.
MOD_PERMISSIONS = permissions.MANAGE_CHANNELS | permissions.MANAGE_MESSAGES | permissions.MANAGE_GUILD


@dataclass
class Seed:
    """Handles on the standard guild's objects; ``everyone.id == guild.id``."""

    guild: FakeGuild
    general: FakeChannel
    second: FakeChannel
    everyone: FakeRole
    mod: FakeRole
    admin: FakeUser
    user: FakeUser
    bot: FakeUser


def seed_world(world: World) -> Seed:
    """Populate ``world`` with the standard guild and return handles on it."""
    guild = world.add_guild("Test Guild")
    general = world.add_text_channel(guild.id, "general")
    second = world.add_text_channel(guild.id, "stories")
    mod = world.add_role(guild.id, "Mod", permissions.DEFAULT_EVERYONE | MOD_PERMISSIONS)
    admin = world.add_user("admin")
    user = world.add_user("reader")
    world.add_member(guild.id, admin.id, [mod.id])
    world.add_member(guild.id, user.id)
    return Seed(guild, general, second, guild.roles[guild.id], mod, admin, user, world.bot)
