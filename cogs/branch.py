"""The message context menus on story paragraphs: "Continue from here" (anyone: a branch in a new
thread) and "Regenerate" (the story's starter or Manage Messages; the newest paragraph only,
else a branch is offered). What they do is bot/discord/branching.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.branching import Branching
from bot.discord.branching import open_branch, regenerate_paragraph
from bot.discord.checks import place_of

if TYPE_CHECKING:
    from bot.discord.client import StoryBot

CONTINUE_FROM_HERE = "Continue from here"
REGENERATE = "Regenerate"


class Branch(commands.Cog):
    """The two message commands (Apps menu of a message)."""

    def __init__(self, bot: StoryBot) -> None:
        self.bot = bot
        self.menus = [self._menu(CONTINUE_FROM_HERE, self.continue_from_here),
                      self._menu(REGENERATE, self.regenerate)]

    @staticmethod
    def _menu(name: str, callback: object) -> app_commands.ContextMenu:
        menu = app_commands.ContextMenu(name=name, callback=callback)  # type: ignore[arg-type]
        menu.guild_only = True  # stories, settings and permissions belong to a server
        menu.allowed_contexts = app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False)
        menu.allowed_installs = app_commands.AppInstallationType(guild=True, user=False)
        return menu

    async def cog_load(self) -> None:
        for menu in self.menus:
            self.bot.tree.add_command(menu)

    async def cog_unload(self) -> None:
        for menu in self.menus:
            self.bot.tree.remove_command(menu.name, type=menu.type)

    async def continue_from_here(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """A new thread whose story is this one up to the chosen paragraph, and its next paragraph."""
        paragraph = await Branching(self.bot.service).paragraph_shown_by(place_of(interaction), message.id)
        await open_branch(self.bot, interaction, paragraph)

    async def regenerate(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Write the chosen paragraph again, when it is the story's newest."""
        paragraph = await Branching(self.bot.service).paragraph_shown_by(place_of(interaction), message.id)
        await regenerate_paragraph(self.bot, interaction, paragraph)


async def setup(bot: StoryBot) -> None:
    await bot.add_cog(Branch(bot))
