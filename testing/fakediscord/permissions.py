"""Permission bits the fake server computes with (a subset of Discord's bitfield)."""

from __future__ import annotations

from collections.abc import Iterable

ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADMINISTRATOR = 1 << 3
USE_APPLICATION_COMMANDS = 1 << 31
MANAGE_THREADS = 1 << 34
CREATE_PUBLIC_THREADS = 1 << 35
SEND_MESSAGES_IN_THREADS = 1 << 38

# Roughly what a new guild grants @everyone: talk, read, use commands and threads, manage nothing.
DEFAULT_EVERYONE = (
    ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_APPLICATION_COMMANDS
    | CREATE_PUBLIC_THREADS
    | SEND_MESSAGES_IN_THREADS
)
# Every bit Discord defines today fits in 51 bits; administrators get all of them.
ALL = (1 << 51) - 1


def combine(role_permissions: Iterable[int]) -> int:
    """OR the roles' bitfields together; administrator implies every permission.

    Channel overwrites are not modelled: the result is the guild-level permission set.
    """
    value = 0
    for bits in role_permissions:
        value |= bits
    return ALL if value & ADMINISTRATOR else value
