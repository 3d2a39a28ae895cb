"""Plain records of what the fake Discord knows: users, guilds, channels, threads, messages."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

# Channel types (Discord's numbering).
GUILD_TEXT = 0
PUBLIC_THREAD = 11
PRIVATE_THREAD = 12
THREAD_TYPES = (PUBLIC_THREAD, PRIVATE_THREAD)

# Message flags.
EPHEMERAL = 1 << 6
LOADING = 1 << 7


def iso_now() -> str:
    """Now as the ISO-8601 UTC timestamp Discord puts in payloads."""
    return datetime.datetime.now(datetime.UTC).isoformat()


@dataclass
class FakeUser:
    """A Discord user (the bot is one too)."""

    id: int
    username: str
    bot: bool = False
    global_name: str | None = None


@dataclass
class FakeRole:
    """A guild role; the @everyone role has the guild's id."""

    id: int
    guild_id: int
    name: str
    permissions: int
    position: int = 0


@dataclass
class FakeMember:
    """A user's membership in one guild."""

    user_id: int
    guild_id: int
    role_ids: list[int] = field(default_factory=list)
    flags: int = 0
    nick: str | None = None
    joined_at: str = field(default_factory=iso_now)


@dataclass
class FakeChannel:
    """A guild text channel, or a thread (type 11/12) when ``parent_id`` is set."""

    id: int
    guild_id: int
    name: str
    type: int = GUILD_TEXT
    position: int = 0
    parent_id: int | None = None
    owner_id: int | None = None
    archived: bool = False
    locked: bool = False
    auto_archive_duration: int = 1440
    rate_limit_per_user: int = 0
    created_at: str = field(default_factory=iso_now)

    @property
    def is_thread(self) -> bool:
        """Whether this channel is a thread."""
        return self.type in THREAD_TYPES


@dataclass
class FakeGuild:
    """A guild with its roles, channels (threads included) and members, keyed by id."""

    id: int
    name: str
    owner_id: int
    roles: dict[int, FakeRole] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)


@dataclass
class FakeAttachment:
    """A file uploaded with a message: the name and the exact bytes the client sent."""

    id: int
    filename: str
    data: bytes
    content_type: str | None = None
    description: str | None = None


@dataclass
class FakeMessage:
    """A message as it is now; ``history`` keeps earlier contents, oldest first."""

    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    flags: int = 0
    webhook_id: int | None = None
    interaction_id: int | None = None
    reference_id: int | None = None
    thread_id: int | None = None
    deleted: bool = False
    history: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=iso_now)
    edited_at: str | None = None

    @property
    def ephemeral(self) -> bool:
        """Whether only the invoking user can see it."""
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """Whether it is still the "thinking..." placeholder of a deferred interaction."""
        return bool(self.flags & LOADING)
