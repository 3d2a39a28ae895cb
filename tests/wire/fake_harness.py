"""A small discord.py bot (no project code) that the fake Discord's own tests drive."""

from __future__ import annotations

import asyncio

import discord
from discord import app_commands
from discord.ext import commands

from testing.fakediscord import FAST_CLIENT_OPTIONS, FakeDiscord

NO_MENTIONS = discord.AllowedMentions.none()
MORE_BUTTON_ID = "story:more"
REWRITE_BUTTON_ID = "story:rewrite"
EVENT_TIMEOUT = 3.0


class StoryView(discord.ui.View):
    """A persistent view with one button that records who clicked it."""

    def __init__(self, clicks: list[int]) -> None:
        super().__init__(timeout=None)
        self.clicks = clicks

    @discord.ui.button(label="More", custom_id=MORE_BUTTON_ID)
    async def more(self, interaction: discord.Interaction, button: discord.ui.Button[StoryView]) -> None:
        self.clicks.append(interaction.user.id)
        await interaction.response.send_message("More is coming.", ephemeral=True)

    @discord.ui.button(label="Rewrite", custom_id=REWRITE_BUTTON_ID)
    async def rewrite(self, interaction: discord.Interaction, button: discord.ui.Button[StoryView]) -> None:
        await interaction.response.defer()
        await interaction.edit_original_response(content="Rewritten.", view=None)


def make_write_command() -> app_commands.Command[None, ..., None]:
    """/write: defer, post a draft followup without mentions, then edit it into the final text."""

    @app_commands.command(name="write", description="Write a paragraph about a topic.")
    @app_commands.describe(
        topic="What the paragraph is about", length="How many sentences", private="Only you see it"
    )
    async def write(
        interaction: discord.Interaction, topic: str, length: int = 3, private: bool = False
    ) -> None:
        await interaction.response.defer(thinking=True, ephemeral=private)
        draft = await interaction.followup.send(
            f"Writing about {topic}...", allowed_mentions=NO_MENTIONS, wait=True
        )
        await draft.edit(content=f"{length} sentences about {topic}.", allowed_mentions=NO_MENTIONS)

    return write


def make_story_group() -> app_commands.Group:
    """/story chapter continue <number>: a subcommand inside a group."""
    story = app_commands.Group(name="story", description="Stories")
    chapter = app_commands.Group(name="chapter", description="Chapters", parent=story)

    @chapter.command(name="continue", description="Continue a chapter.")
    @app_commands.describe(number="Chapter number")
    async def continue_(interaction: discord.Interaction, number: app_commands.Range[int, 1, 9]) -> None:
        await interaction.response.send_message(f"Chapter {number} goes on.")

    return story


class HarnessBot(commands.Bot):
    """A minimal bot: one guild command, one persistent view, and flags for lifecycle events."""

    def __init__(self, guild_id: int, message_content: bool = True) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.message_content = message_content
        super().__init__(command_prefix="!", intents=intents, **FAST_CLIENT_OPTIONS)
        self.test_guild = discord.Object(guild_id)
        self.clicks: list[int] = []
        self.ready_event = asyncio.Event()
        self.resumed_event = asyncio.Event()
        self.seen: list[str] = []

    async def setup_hook(self) -> None:
        self.add_view(StoryView(self.clicks))
        self.tree.add_command(make_write_command(), guild=self.test_guild)
        self.tree.add_command(make_story_group(), guild=self.test_guild)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py sleeps 5 s before every non-initial IDENTIFY; tests need not wait.
        return None

    async def on_ready(self) -> None:
        self.ready_event.set()

    async def on_resumed(self) -> None:
        self.resumed_event.set()

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message.content)


def harness(fake: FakeDiscord) -> HarnessBot:
    return HarnessBot(fake.seed.guild.id)
