"""What members type, checked and cleaned before anything is queued or stored: topics, styles,
setting names and the scope a settings change applies to. Every front goes through these (via
the service), so Discord and the console refuse the same things in the same words."""

from __future__ import annotations

import difflib
from typing import Any

from bot.formatting import only_mentions, strip_mentions
from bot.limits import MAX_TOPIC_CHARS
from bot.messages import PermissionDenied, UserError
from bot.place import Place
from bot.preferences import ALL_SETTINGS, MAX_STYLE_CHARS, setting_names
from bot.storage import Scope, Story
from models.params import GenerationParams, show_value

SCOPE_NAMES: dict[str, Scope] = {"server": "guild", "channel": "channel", "thread": "thread"}
NO_STYLE = ("", "none", "off", "unset")  # what clears the style setting


def writable_scope(place: Place, scope: str) -> tuple[Scope, int]:
    """The stored scope and id a settings change at `scope` (server, channel, thread) applies to,
    if this member may make it there."""
    if scope not in SCOPE_NAMES:
        raise UserError(f"scope must be server, channel or thread, got {show_value(scope)}")
    if scope == "server":
        if place.guild_id is None:
            raise UserError("server defaults can only be set inside a server")
        if not place.can_manage_guild:
            raise PermissionDenied("changing server defaults needs the Manage Server permission")
        return "guild", place.guild_id
    if not place.can_manage_channel:
        raise PermissionDenied("changing this channel's settings needs the Manage Channels permission")
    if scope == "thread":
        if place.thread_id is None:
            raise UserError("thread settings can only be set inside a thread")
        return "thread", place.thread_id
    return "channel", place.channel_id


def check_setting_name(name: str) -> None:
    """Refuse an unknown setting name, suggesting the closest known one ("temprature")."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key in ALL_SETTINGS:
        return
    close = difflib.get_close_matches(key, ALL_SETTINGS, n=1, cutoff=0.6)
    hint = f": did you mean {close[0]}?" if close else f"; settings: {setting_names()}"
    raise UserError(f"unknown setting {show_value(name)}{hint}")


def with_consistent_lengths(current: GenerationParams, changes: dict[str, Any]) -> dict[str, Any]:
    """Asking for fewer tokens than the current minimum lowers the minimum too."""
    length = changes.get("max_new_tokens")
    # Only a number can lower the minimum; anything else is left for validation to refuse.
    if isinstance(length, int | float) and "min_new_tokens" not in changes and current.min_new_tokens > length:
        return changes | {"min_new_tokens": length}
    return changes


def clean_text(text: str, what: str, limit: int) -> str:
    """Collapse whitespace and drop control and zero-width characters; refuse over-long text."""
    # Any space (a no-break or ideographic one too) still separates words; the invisible rest goes.
    kept = "".join(ch if ch.isprintable() else " " if ch.isspace() else "" for ch in text)
    kept = " ".join(kept.split())
    if len(kept) > limit:
        raise UserError(f"the {what} is too long ({len(kept)} characters; at most {limit})")
    return kept


def clean_topic(topic: str) -> str:
    cleaned = clean_text(topic, "topic", MAX_TOPIC_CHARS)
    if not cleaned:
        raise UserError("give me a topic, for example: /write topic: a lighthouse keeper")
    if only_mentions(cleaned):
        raise UserError("a topic needs words besides mentions, for example: /write topic: a lighthouse keeper")
    return cleaned


def clean_style(style: str) -> str:
    """A style as prompts take it: cleaned like a topic, with its mention syntax taken out (the
    model would only copy it); "none" or nothing clears it."""
    cleaned = strip_mentions(clean_text(style, "style", MAX_STYLE_CHARS))
    return "" if cleaned.lower() in NO_STYLE else cleaned


def lives_in(story: Story, place: Place) -> bool:
    """Whether `story` belongs to the server and channel (or thread) of `place`."""
    here = {place.channel_id, place.conversation_id}
    return story.guild_id == place.guild_id and (story.channel_id in here or story.thread_id in here)
