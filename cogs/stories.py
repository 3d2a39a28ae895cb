"""Stories after the first paragraph: /continue, members' own lines, /forget, export, list."""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.branching import Branching
from bot.discord.checks import in_thread, place_of, place_of_message
from bot.discord.errors import HANDLED, NO_MENTIONS, PRIVATE_DEFER, reply_privately
from bot.discord.pages import export_filename, story_markdown
from bot.discord.story_list import story_list_message
from bot.limits import MAX_DIRECTION_CHARS
from bot.messages import BUTTONS_REMOVED, FORGET_DONE, AccessDenied, NoStory
from bot.preferences import MAX_STYLE_CHARS
from cogs.settings import model_suggestions
from cogs.write import KEPT, MODEL_MAX, STRATEGY_CHOICES, STYLE_HELP
from models.params import SETTINGS

if TYPE_CHECKING:
    from bot.discord.client import StoryBot

log = logging.getLogger(__name__)


class Stories(commands.Cog):
    """/continue, /forget, /story export and members' own lines (the buttons: bot/discord/clicks.py)."""

    story = app_commands.Group(
        name="story", description="The story of this thread or channel", guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False),
        allowed_installs=app_commands.AppInstallationType(guild=True, user=False))

    def __init__(self, bot: StoryBot) -> None:
        self.bot = bot
        self.service = bot.service

    # -- commands -----------------------------------------------------------------------------
    @app_commands.command(name="continue")
    @app_commands.guild_only()
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.describe(
        direction="Where the story should go next (optional)",
        model=SETTINGS["model"].description + KEPT,
        strategy=SETTINGS["strategy"].description + KEPT,
        style=STYLE_HELP + KEPT,
    )
    @app_commands.choices(strategy=STRATEGY_CHOICES)
    @in_thread()
    async def continue_(self, interaction: discord.Interaction,
                        direction: app_commands.Range[str, 1, MAX_DIRECTION_CHARS] | None = None,
                        model: app_commands.Range[str, 1, MODEL_MAX] | None = None,
                        strategy: str | None = None,
                        style: app_commands.Range[str, 1, MAX_STYLE_CHARS] | None = None) -> None:
        """Write the next paragraph of this thread's story, with the model, strategy and style it keeps."""
        await interaction.response.defer(thinking=True)
        overrides = {"model": model, "strategy": strategy, "style": style}
        generation = await self.service.continue_story(place_of(interaction), direction, overrides)
        await self.bot.stream(generation, self.bot.reply_target(interaction))

    @continue_.autocomplete("model")
    async def _models(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return model_suggestions(self.service.models, current)

    @app_commands.command(name="forget")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_messages=True)  # hidden from others; still checked
    @app_commands.allowed_installs(guilds=True, users=False)
    async def forget(self, interaction: discord.Interaction) -> None:
        """Forget the stories of this channel or thread (needs Manage Messages)."""
        forgotten = await self.service.forget(place_of(interaction))
        carriers = forgotten.button_messages
        buttons = BUTTONS_REMOVED.format(count=len(carriers)) if carriers else ""
        await interaction.response.send_message(
            FORGET_DONE.format(turns=forgotten.turns, buttons=buttons),
            ephemeral=True, allowed_mentions=NO_MENTIONS)
        for channel_id, message_id in carriers:
            await self.bot.clear_buttons(channel_id, message_id)

    @story.command(name="export")
    async def export(self, interaction: discord.Interaction) -> None:
        """Download this thread's story (or this channel's newest) as a Markdown file."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        interaction.extras[PRIVATE_DEFER] = True
        story = await self.service.story_here(place_of(interaction))
        turns = await self.service.turns(story)
        data = story_markdown(story, turns).encode("utf-8")
        file = discord.File(io.BytesIO(data), filename=export_filename(story))
        await interaction.followup.send(f"The story so far: {len(turns)} part(s).", file=file,
                                        ephemeral=True, allowed_mentions=NO_MENTIONS)

    @story.command(name="list")
    @app_commands.describe(page="Which page (newest stories first)")
    async def list_(self, interaction: discord.Interaction, page: app_commands.Range[int, 1, 10_000] = 1) -> None:
        """This server's stories, newest first: topic, paragraphs and a link."""
        content, view = await story_list_message(Branching(self.service), interaction, page)
        await interaction.response.send_message(content, view=view or discord.utils.MISSING, ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)

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
        place = place_of_message(message)
        if (await self.service.effective_settings(place)).preferences.story_channel:
            return  # there it directs the next paragraph instead (cogs/story_channel.py)
        roles = [role.id for role in getattr(message.author, "roles", ())]
        try:  # a member the access rules refuse does not write into stories either (nobody is told)
            await self.service.access.check(place, roles)
            story = await self.service.story_here(place)
        except (NoStory, AccessDenied):
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
