"""Helpers the over-the-wire tests share: what a message shows, read off the fake Discord's record."""

from __future__ import annotations

from typing import Any


def button_ids(message: Any) -> list[str]:
    """The custom ids of a message's buttons, in order."""
    return [b["custom_id"] for row in message.components for b in row["components"]]
