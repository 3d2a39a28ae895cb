"""What buttons a message shows, read off the fake Discord's record: for tests/ and bench/."""

from __future__ import annotations

import re
from typing import Any

# A story button's custom id ends with the story's id (story:continue:42): tests name the action.
_STORY_ID = re.compile(r":[0-9]+$")


def raw_button_ids(message: Any) -> list[str]:
    """The custom ids of a message's buttons, in order, exactly as Discord has them."""
    return [b["custom_id"] for row in message.components for b in row["components"]]


def button_ids(message: Any) -> list[str]:
    """Which buttons a message shows: their custom ids without the story id they carry."""
    return [_STORY_ID.sub("", custom_id) for custom_id in raw_button_ids(message)]


def full_button_id(message: Any, action_id: str) -> str:
    """The full custom id of the message's button for `action_id`; `action_id` itself when the
    message no longer shows that button (a stale client still may send it)."""
    return next((full for full in raw_button_ids(message) if _STORY_ID.sub("", full) == action_id), action_id)
