"""Branching on Discord: "Continue from here" opens a thread for a new story that starts with the
story so far up to the chosen paragraph; "Regenerate" on a paragraph that is not the newest
offers the same branch with a button (`branch:<turn id>`, a DynamicItem, so it works after a
restart). The context menus themselves are in cogs/branch.py; the use cases in bot/branching.py.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord

from bot.branching import Branching, NotTheLast, Paragraph
from bot.discord.checks import place_of
from bot.discord.errors import NO_MENTIONS, PRIVATE_DEFER, report_error
from bot.discord.pages import thread_name
from bot.discord.stream import ChannelTarget
from bot.messages import BRANCH_OPENING, BRANCHED, REGENERATING, UserError
from bot.service import Generation, Service

THREAD_ARCHIVE_MINUTES = 1440  # as a story thread opened by /write


class BranchHost(Protocol):
    """What branching needs of the bot (a StoryBot)."""

    service: Service

    async def stream(self, generation: Generation, target: Any) -> list[int]: ...


class RewriteTarget(ChannelTarget):
    """A stream that writes its first page into an existing message (the paragraph being written
    again), and any further pages as new messages after it."""

    def __init__(self, channel: discord.abc.Messageable, channel_id: int, message_id: int) -> None:
        super().__init__(channel, channel_id)
        self.message_id = message_id
        self._taken = False

    async def post(self, content: str, view: discord.ui.View | None, first: bool) -> int:
        if first and not self._taken:
            self._taken = True
            await self.edit(self.message_id, content, view)
            return self.message_id
        return await super().post(content, view, first)


def text_channel_of(interaction: discord.Interaction) -> discord.TextChannel:
    """The text channel a branch's thread opens in: this one, or a thread's parent."""
    channel = interaction.channel
    if isinstance(channel, discord.Thread):
        channel = channel.parent
    if not isinstance(channel, discord.TextChannel):
        raise UserError("branches open as threads of a text channel, and this is not one")
    return channel


async def open_branch(bot: BranchHost, interaction: discord.Interaction, paragraph: Paragraph) -> None:
    """Branch from `paragraph` into a new thread and write the branch's next paragraph there;
    the member is told privately where it went."""
    branching = Branching(bot.service)
    place = place_of(interaction)
    home = text_channel_of(interaction)
    branch = await branching.branch(place, paragraph, home.id)  # refused before anything shows
    await interaction.response.defer(thinking=True, ephemeral=True)
    interaction.extras[PRIVATE_DEFER] = True
    try:
        thread = await home.create_thread(name=thread_name(f"{branch.topic} (branch)"),
                                          type=discord.ChannelType.public_thread,
                                          auto_archive_duration=THREAD_ARCHIVE_MINUTES)
    except discord.HTTPException:  # no Create Public Threads permission, say: no branch is left behind
        await branching.abandon(branch)
        raise
    await bot.service.attach(branch.id, thread_id=thread.id)
    link = paragraph_link(interaction, paragraph)
    await thread.send(BRANCH_OPENING.format(position=paragraph.number, link=link), allowed_mentions=NO_MENTIONS)
    generation = await branching.continue_branch(place, branch, thread.id)
    await interaction.edit_original_response(
        content=BRANCHED.format(position=paragraph.number, topic=discord.utils.escape_markdown(branch.topic),
                                thread=thread.mention), allowed_mentions=NO_MENTIONS)
    await bot.stream(generation, ChannelTarget(thread, thread.id))


async def regenerate_paragraph(bot: BranchHost, interaction: discord.Interaction, paragraph: Paragraph) -> None:
    """Write `paragraph` again in its own message; for an older one, offer a branch instead."""
    try:
        generation = await Branching(bot.service).regenerate(place_of(interaction), paragraph)
    except NotTheLast as refused:
        view = discord.ui.View(timeout=None)
        view.add_item(BranchButton(refused.paragraph.turn.id))
        view.stop()  # the registered BranchButton answers the click, not this copy
        await interaction.response.send_message(f"Sorry: {refused}", view=view, ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)
        return
    await interaction.response.send_message(REGENERATING, ephemeral=True, allowed_mentions=NO_MENTIONS)
    channel: Any = interaction.channel
    await bot.stream(generation, RewriteTarget(channel, interaction.channel_id or 0, paragraph.turn.message_ids[0]))


def paragraph_link(interaction: discord.Interaction, paragraph: Paragraph) -> str:
    """A link to the paragraph's (first) message, in the channel the member pointed at it."""
    return (f"https://discord.com/channels/{interaction.guild_id}/{interaction.channel_id}/"
            f"{paragraph.turn.message_ids[0]}")


class BranchButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"branch:(?P<turn>[0-9]+)"):
    """"Continue from here instead", under a refused Regenerate: branches from that paragraph."""

    def __init__(self, turn_id: int) -> None:
        self.turn_id = turn_id
        super().__init__(discord.ui.Button(label="Continue from here instead", emoji="🌿",
                                           style=discord.ButtonStyle.primary, custom_id=f"branch:{turn_id}"))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button[Any],
                             match: re.Match[str], /) -> BranchButton:
        return cls(int(match["turn"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: Any = interaction.client  # a StoryBot
        try:
            await bot.clicks.check_access(interaction)
            paragraph = await Branching(bot.service).paragraph_by_turn(place_of(interaction), self.turn_id)
            await open_branch(bot, interaction, paragraph)
        except Exception as error:  # a dynamic item has no on_error: the one error path is here
            await report_error(interaction, error)
