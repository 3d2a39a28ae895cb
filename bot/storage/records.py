"""What the database holds, as Python values: stories, turns, scopes and kinds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Scope = Literal["guild", "channel", "thread"]
TurnKind = Literal["write", "continue", "user"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
TURN_KINDS: tuple[TurnKind, ...] = get_args(TurnKind)
# Turns the model wrote; Regenerate may only replace one of these, never a user's words.
GENERATED_KINDS: tuple[TurnKind, ...] = ("write", "continue")


@dataclass(frozen=True)
class Story:
    """One story: the first paragraph's context and where it lives on Discord."""

    id: int
    guild_id: int | None
    channel_id: int
    thread_id: int | None
    author_id: int
    topic: str
    model: str
    message_id: int | None
    created_at: float
    open: bool
    parent_id: int | None = None
    """The story this one branched from ("Continue from here"), while that one exists."""


@dataclass(frozen=True)
class Turn:
    """One step of a story: a generated paragraph or a user's own words."""

    id: int
    story_id: int
    position: int
    kind: TurnKind
    author_id: int
    direction: str | None
    text: str
    settings: dict[str, Any]
    created_at: float
    message_ids: tuple[int, ...]
    facts: dict[str, Any] = field(default_factory=dict)
    """How a generated paragraph was written (bot.paragraph_facts); empty for members' lines."""


STORY_COLUMNS = (
    "id, guild_id, channel_id, thread_id, author_id, topic, model, message_id, created_at, open, parent_id"
)
TURN_COLUMNS = (
    "id, story_id, position, kind, author_id, direction, text, settings_json, created_at, message_ids_json,"
    " facts_json"
)


def story_of(row: Sequence[Any]) -> Story:
    id_, guild_id, channel_id, thread_id, author_id, topic, model, message_id, created_at, open_, parent = row
    return Story(
        id_, guild_id, channel_id, thread_id, author_id, topic, model, message_id, created_at, bool(open_), parent
    )


def turn_of(row: Sequence[Any]) -> Turn:
    id_, story_id, position, kind, author_id, direction, text, settings_json, created_at, ids_json, facts = row
    settings, message_ids = json.loads(settings_json), tuple(json.loads(ids_json))
    return Turn(id_, story_id, position, kind, author_id, direction, text, settings, created_at, message_ids,
                json.loads(facts))


def check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")


def dumps(value: Any) -> str:
    # ensure_ascii=False keeps the file readable; json round-trips every str exactly either way.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


