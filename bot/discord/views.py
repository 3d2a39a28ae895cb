"""The Continue / Regenerate / Stop buttons under a paragraph.

One persistent `StoryButtons` is registered in `setup_hook`; its fixed custom ids are all a
click needs, because the story is found from where the clicked message is (its channel, or
the thread it starts). That is why the buttons keep working after a restart. Messages are
sent with *stopped* copies: discord.py then keeps no per-message view in memory and every
click reaches the registered one.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, cast

import discord

from bot.discord.errors import report_error
from bot.messages import UserError

CONTINUE_ID = "story:continue"
REGENERATE_ID = "story:regenerate"
STOP_ID = "story:stop"
STORIES_COG = "Stories"  # the cog that answers clicks (cogs/stories.py)

Phase = Literal["all", "writing", "done"]
_SHOWN: dict[Phase, tuple[str, ...]] = {
    "all": (CONTINUE_ID, REGENERATE_ID, STOP_ID),
    "writing": (STOP_ID,),  # Stop only while writing (or waiting in line)
    "done": (CONTINUE_ID, REGENERATE_ID),
}


class StoryActions(Protocol):
    """What the buttons do; the Stories cog implements it."""

    async def continue_clicked(self, interaction: discord.Interaction) -> None: ...

    async def regenerate_clicked(self, interaction: discord.Interaction) -> None: ...

    async def stop_clicked(self, interaction: discord.Interaction) -> None: ...


def _actions(interaction: discord.Interaction) -> StoryActions:
    get_cog = getattr(interaction.client, "get_cog", None)
    cog = get_cog(STORIES_COG) if get_cog else None
    if cog is None:
        raise UserError("stories are unavailable right now; try again in a minute")
    return cast(StoryActions, cog)


class StoryButtons(discord.ui.View):
    """The buttons; `phase` picks which are shown (all of them for the registered copy)."""

    def __init__(self, phase: Phase = "all") -> None:
        super().__init__(timeout=None)
        for item in list(self.children):
            if getattr(item, "custom_id", None) not in _SHOWN[phase]:
                self.remove_item(item)

    @discord.ui.button(label="Continue", emoji="➡️", style=discord.ButtonStyle.primary, custom_id=CONTINUE_ID)
    async def continue_story(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await _actions(interaction).continue_clicked(interaction)

    @discord.ui.button(label="Regenerate", emoji="🔁", style=discord.ButtonStyle.secondary,
                       custom_id=REGENERATE_ID)
    async def regenerate(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await _actions(interaction).regenerate_clicked(interaction)

    @discord.ui.button(label="Stop", emoji="⏹️", style=discord.ButtonStyle.danger, custom_id=STOP_ID)
    async def stop_writing(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await _actions(interaction).stop_clicked(interaction)

    async def on_error(self, interaction: discord.Interaction, error: Exception,
                       item: discord.ui.Item[Any], /) -> None:
        await report_error(interaction, error)


def buttons_for(phase: Phase) -> StoryButtons:
    """A copy to send with a message: stopped, so only the registered view answers clicks."""
    view = StoryButtons(phase)
    view.stop()
    return view
