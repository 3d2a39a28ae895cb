"""Where a command came from, for every front: the service's view of a channel, thread and member."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Place:
    """Where a command came from and what its author may do there."""

    channel_id: int
    user_id: int
    guild_id: int | None = None
    thread_id: int | None = None
    can_manage_channel: bool = True
    can_manage_guild: bool = True
    can_manage_messages: bool = True

    @property
    def conversation_id(self) -> int:
        """The thread when there is one, else the channel: where a story lives."""
        return self.thread_id or self.channel_id
