"""/story list: this server's stories (topic, paragraphs, link), newest first, a page at a time,
with Previous and Next buttons whose custom ids carry the page (`stories:page:2`), so they work
after a restart too."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import discord

from bot.branching import STORIES_PER_PAGE, Branching, StoryPage
from bot.discord.errors import NO_MENTIONS, report_error
from bot.discord.pages import thread_name
from bot.storage import Story, StoryListing

LISTED_TOPIC_CHARS = 60  # a line per story; the whole page must stay inside one message


def story_link(listing: StoryListing) -> str:
    """Where a story lives: its thread, else its first message, else its channel."""
    story = listing.story
    base = f"https://discord.com/channels/{story.guild_id}"
    if story.thread_id is not None:
        return f"{base}/{story.thread_id}"
    if story.message_id is not None:
        return f"{base}/{story.channel_id}/{story.message_id}"
    return f"{base}/{story.channel_id}"


def page_text(page: StoryPage) -> str:
    """The page as one message: a line per story, newest first."""
    if not page.total:
        return "No stories on this server yet: start one with /write."
    lines = [f"**Stories on this server** (page {page.page} of {page.pages}, {page.total} in all, newest first)"]
    for number, listing in enumerate(page.listings, (page.page - 1) * STORIES_PER_PAGE + 1):
        story = listing.story
        topic = discord.utils.escape_markdown(thread_name(story.topic)[:LISTED_TOPIC_CHARS]) or "(no topic)"
        branch = " · branch" if story.parent_id is not None else ""
        lines.append(f"{number}. [{topic}]({story_link(listing)}) · {listing.paragraphs} paragraph(s)"
                     f"{branch} · <t:{int(story.created_at)}:R>")
    return "\n".join(lines)


def page_view(page: StoryPage) -> discord.ui.View | None:
    """Previous / Next, when there is more than one page."""
    if page.pages <= 1:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(StoryListButton(page.page - 1, "Previous", disabled=page.page <= 1))
    view.add_item(StoryListButton(page.page + 1, "Next", disabled=page.page >= page.pages))
    view.stop()  # the registered StoryListButton answers clicks, not this copy
    return view


def visible_to(interaction: discord.Interaction) -> Callable[[Story], bool]:
    """Whether the member may see the channel (or thread) a story lives in: the list must not
    show the topics of channels hidden from them."""
    guild, member = interaction.guild, interaction.user

    def visible(story: Story) -> bool:
        if guild is None or not isinstance(member, discord.Member):
            return False
        for place_id in (story.thread_id, story.channel_id):
            channel = guild.get_channel_or_thread(place_id) if place_id is not None else None
            if channel is not None:
                return channel.permissions_for(member).view_channel
        return False  # its channel is gone (or not known to the bot)

    return visible


async def story_list_message(branching: Branching, interaction: discord.Interaction,
                             page: int) -> tuple[str, discord.ui.View | None]:
    """The content and buttons of page `page` of this server's stories the member may see."""
    shown = await branching.story_page(interaction.guild_id or 0, page, visible_to(interaction))
    return page_text(shown), page_view(shown)


class StoryListButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"stories:page:(?P<page>[0-9]+)"):
    """Previous or Next under /story list: shows that page in the same message."""

    def __init__(self, page: int, label: str = "Page", disabled: bool = False) -> None:
        self.page = page
        super().__init__(discord.ui.Button(label=label, style=discord.ButtonStyle.secondary, disabled=disabled,
                                           custom_id=f"stories:page:{max(page, 0)}"))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button[Any],
                             match: re.Match[str], /) -> StoryListButton:
        return cls(int(match["page"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: Any = interaction.client  # a StoryBot
        try:
            await bot.clicks.check_access(interaction)
            content, view = await story_list_message(Branching(bot.service), interaction, self.page)
            await interaction.response.edit_message(content=content, view=view, allowed_mentions=NO_MENTIONS)
        except Exception as error:  # a dynamic item has no on_error: the one error path is here
            await report_error(interaction, error)
