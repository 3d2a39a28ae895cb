"""The Continue / Regenerate / Stop buttons under a paragraph.

Each button is a `discord.ui.DynamicItem` whose custom id carries the story it belongs to
(`story:continue:42`), registered once in `setup_hook`: a click on any message, even one
posted before a restart, is parsed back into the action and the story, with nothing kept in
memory. Stop is shown while a paragraph is written, before it has a story, so its id is plain
`story:stop`; buttons posted before ids carried a story (`story:continue`) still work: the
story is then found from where the clicked message is. Clicks go to the bot's `StoryClicks`
(bot/discord/clicks.py).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal, Protocol

import discord

from bot.discord.errors import report_error
from bot.ops.request_ids import start_request

log = logging.getLogger(__name__)

CONTINUE_ID = "story:continue"
REGENERATE_ID = "story:regenerate"
STOP_ID = "story:stop"

Action = Literal["continue", "regenerate", "stop"]
Phase = Literal["writing", "done"]
_LOOKS: dict[Action, tuple[str, str, discord.ButtonStyle]] = {  # label, emoji, style
    "continue": ("Continue", "➡️", discord.ButtonStyle.primary),
    "regenerate": ("Regenerate", "🔁", discord.ButtonStyle.secondary),
    "stop": ("Stop", "⏹️", discord.ButtonStyle.danger),
}
_SHOWN: dict[Phase, tuple[Action, ...]] = {
    "writing": ("stop",),  # Stop only while writing (or waiting in line)
    "done": ("continue", "regenerate"),
}


class StoryClickHandler(Protocol):
    """What the buttons do (bot/discord/clicks.py implements it)."""

    async def continue_clicked(self, interaction: discord.Interaction, story_id: int | None) -> None: ...

    async def regenerate_clicked(self, interaction: discord.Interaction, story_id: int | None) -> None: ...

    async def stop_clicked(self, interaction: discord.Interaction) -> None: ...

    async def check_access(self, interaction: discord.Interaction) -> None: ...


class HasStoryClicks(Protocol):
    clicks: StoryClickHandler


class StoryButton(discord.ui.DynamicItem[discord.ui.Button[Any]],
                  template=r"story:(?P<action>continue|regenerate|stop)(?::(?P<story>[0-9]+))?"):
    """One of the three buttons; its custom id says which, and for which story."""

    def __init__(self, action: Action, story_id: int | None = None) -> None:
        self.action: Action = action
        self.story_id = story_id
        label, emoji, style = _LOOKS[action]
        custom_id = f"story:{action}" if story_id is None else f"story:{action}:{story_id}"
        super().__init__(discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=custom_id))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button[Any],
                             match: re.Match[str], /) -> StoryButton:
        action: Action = match["action"]  # type: ignore[assignment]  # the template allows only these
        return cls(action, int(match["story"]) if match["story"] else None)

    async def callback(self, interaction: discord.Interaction) -> None:
        client: HasStoryClicks = interaction.client  # type: ignore[assignment]  # a StoryBot
        request_id = start_request()  # this click's own task: its log lines carry the id
        log.debug("%s clicked by user %s in channel %s", self.action, interaction.user.id,
                  interaction.channel_id, extra={"request_id": request_id})
        try:
            await client.clicks.check_access(interaction)
            if self.action == "continue":
                await client.clicks.continue_clicked(interaction, self.story_id)
            elif self.action == "regenerate":
                await client.clicks.regenerate_clicked(interaction, self.story_id)
            else:
                await client.clicks.stop_clicked(interaction)
        except Exception as error:  # a dynamic item has no on_error: the one error path is here
            await report_error(interaction, error)


def buttons_for(phase: Phase, story_id: int | None = None) -> discord.ui.View:
    """The buttons to send with a message. The view is stopped: the registered StoryButton,
    not this copy, answers clicks, so discord.py keeps no per-message view in memory."""
    view = discord.ui.View(timeout=None)
    for action in _SHOWN[phase]:
        view.add_item(StoryButton(action, None if action == "stop" else story_id))
    view.stop()
    return view
