"""/settings show | set | reset: generation settings per server, channel and thread."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.checks import place_of
from bot.discord.errors import NO_MENTIONS
from bot.formatting import settings_table
from bot.input_checks import SCOPE_NAMES
from bot.preferences import ALL_SETTINGS, default_value

if TYPE_CHECKING:
    from bot.discord.client import StoryBot

MAX_CHOICES = 25  # Discord shows at most this many autocomplete suggestions
SCOPE_CHOICES = [app_commands.Choice(name=scope, value=scope) for scope in SCOPE_NAMES]
SCOPE_HELP = "Where the change applies: this channel (default), the whole server, or this thread"


def name_suggestions(current: str) -> list[app_commands.Choice[str]]:
    """Setting names that contain what was typed (those starting with it first), with their ranges."""
    typed = current.strip().lower()
    found = sorted((name for name in ALL_SETTINGS if typed in name), key=lambda name: not name.startswith(typed))
    return [app_commands.Choice(name=f"{name}: {ALL_SETTINGS[name].range_text()}"[:100], value=name)
            for name in found][:MAX_CHOICES]


def model_suggestions(models: Sequence[str], current: str) -> list[app_commands.Choice[str]]:
    """The offered models that contain what was typed."""
    typed = current.strip().lower()
    return [app_commands.Choice(name=m[:100], value=m[:100]) for m in models if typed in m.lower()][:MAX_CHOICES]


def value_suggestions(setting: str, current: str, models: Sequence[str] = ()) -> list[app_commands.Choice[str]]:
    """Allowed values for choice and on/off settings and the offered models; for numbers, the
    typed value or the default."""
    spec = ALL_SETTINGS.get(setting.strip().lower())
    if spec is None:
        return []
    if spec.name == "model" and models:
        return model_suggestions(models, current)
    if spec.choices or spec.kind is bool:
        values = spec.choices or ("on", "off")
        return [app_commands.Choice(name=v, value=v) for v in values if current.lower() in v][:MAX_CHOICES]
    default = default_value(spec.name)
    value = current.strip() or ("unset" if default is None else str(default))
    return [app_commands.Choice(name=f"{value}  ({spec.range_text()})"[:100], value=value[:100])]


@app_commands.guild_only()  # settings layer on a server and its channels: nothing to set in DMs
@app_commands.allowed_installs(guilds=True, users=False)
class Settings(commands.GroupCog, group_name="settings", group_description="Generation settings here"):
    """The settings commands; the service decides who may change what."""

    def __init__(self, bot: StoryBot) -> None:
        self.bot = bot
        self.service = bot.service
        super().__init__()

    @app_commands.command(name="show")
    async def show(self, interaction: discord.Interaction) -> None:
        """Show the settings in effect here (built-in < server < channel < thread)."""
        here = await self.service.effective_settings(place_of(interaction))
        table = settings_table(here, self.service.models, self.service.unsupported(here.params))
        await interaction.response.send_message(
            f"Settings here (each with where it comes from):\n```\n{table}\n```", ephemeral=True,
            allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="set")
    @app_commands.describe(name="The setting to change", value="Its new value", scope=SCOPE_HELP)
    @app_commands.choices(scope=SCOPE_CHOICES)
    async def set_(self, interaction: discord.Interaction, name: str, value: str,
                   scope: str = "channel") -> None:
        """Change one setting (Manage Channels; the server scope needs Manage Server)."""
        answer = await self.service.set_setting(place_of(interaction), name, value, scope)
        await interaction.response.send_message(answer, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @set_.autocomplete("name")
    async def _names(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return name_suggestions(current)

    @set_.autocomplete("value")
    async def _values(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return value_suggestions(str(getattr(interaction.namespace, "name", "") or ""), current, self.service.models)

    @app_commands.command(name="reset")
    @app_commands.describe(scope=SCOPE_HELP)
    @app_commands.choices(scope=SCOPE_CHOICES)
    async def reset(self, interaction: discord.Interaction, scope: str = "channel") -> None:
        """Put this scope's settings back to the defaults above it."""
        answer = await self.service.reset_settings(place_of(interaction), scope)
        await interaction.response.send_message(answer, ephemeral=True, allowed_mentions=NO_MENTIONS)


async def setup(bot: StoryBot) -> None:
    await bot.add_cog(Settings(bot))
