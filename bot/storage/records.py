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
    """One story: the first paragraph's context, where it lives on Discord, the options it keeps
    and its cast."""

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
    choices: tuple[KeptChoice, ...] = field(default=(), hash=False)
    """The options members gave its paragraphs that it keeps (bot.story_options), oldest first."""
    cast: tuple[str, ...] = ()
    """Its proper names so far, oldest first (models.story_cast), updated as each turn is stored."""

    @property
    def kept(self) -> dict[str, Any]:
        """The options the story keeps: the latest choice of each."""
        return {name: value for choice in self.choices for name, value in choice.options.items()}

    @property
    def kept_since(self) -> dict[str, int]:
        """The paragraph each kept option was chosen at (1: the story's start)."""
        return {name: choice.paragraph for choice in self.choices for name in choice.options}


@dataclass(frozen=True)
class KeptChoice:
    """Options a member gave one paragraph of a story (/write ... model: llamacpp), which the story
    keeps for the paragraphs after it until another choice replaces them."""

    paragraph: int
    """The paragraph they came with, 1-based among the generated ones (1: the story's start)."""
    options: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"paragraph": self.paragraph, "options": self.options}


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
    "id, guild_id, channel_id, thread_id, author_id, topic, model, message_id, created_at, open, parent_id,"
    " kept_json, cast_json"
)
TURN_COLUMNS = (
    "id, story_id, position, kind, author_id, direction, text, settings_json, created_at, message_ids_json,"
    " facts_json"
)


def story_of(row: Sequence[Any]) -> Story:
    id_, guild_id, channel_id, thread_id, author_id, topic, model, message_id, created_at, open_, parent = row[:11]
    kept_json, cast_json = row[11:]
    return Story(
        id_, guild_id, channel_id, thread_id, author_id, topic, model, message_id, created_at, bool(open_), parent,
        choices_of(kept_json), tuple(json.loads(cast_json)),
    )


def choices_of(kept_json: str) -> tuple[KeptChoice, ...]:
    """A story's kept_json column as KeptChoices."""
    return tuple(KeptChoice(int(c["paragraph"]), dict(c["options"])) for c in json.loads(kept_json))


def kept_json_of(choices: Sequence[KeptChoice]) -> str:
    return dumps([choice.to_dict() for choice in choices])


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


