"""The replicas of a remote model: their clients, breakers and requests in flight, and which
one a request goes to (a story sticks to one replica while it is healthy)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from bot.engine.remote.breaker import BreakerState, CircuitBreaker


@dataclass
class Endpoint:
    """One URL of a remote model."""

    url: str
    client: Any  # client.RemoteClient (tests may pass another with stream, model_ids and close)
    max_in_flight: int
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    in_flight: int = 0

    @property
    def label(self) -> str:
        """host:port, for logs and /stats (no path, no credentials)."""
        parsed = urlparse(self.url)
        return f"{parsed.hostname}:{parsed.port}" if parsed.port else str(parsed.hostname)

    @property
    def has_room(self) -> bool:
        return self.in_flight < self.max_in_flight


@dataclass(frozen=True)
class EndpointStatus:
    """One URL as /stats shows it."""

    model: str
    label: str
    state: BreakerState
    in_flight: int
    max_in_flight: int


def ranked(endpoints: Sequence[Endpoint], key: str) -> list[Endpoint]:
    """The endpoints in the order `key` prefers them (rendezvous hashing: removing or adding a
    replica moves only the keys that preferred it, and each key keeps its replica otherwise)."""
    def weight(endpoint: Endpoint) -> bytes:
        return hashlib.blake2b(f"{key}|{endpoint.url}".encode(), digest_size=8).digest()

    return sorted(endpoints, key=weight, reverse=True)


def choose(endpoints: Sequence[Endpoint], key: str, exclude: Iterable[Endpoint] = ()) -> Endpoint | None:
    """The healthy endpoint for `key`: the one it prefers, or when that one is full the next
    with room (bounded load: a busy story spills rather than idling another replica); the
    preferred one, full, when all are; None when none is healthy."""
    skipped = list(exclude)
    healthy = [e for e in ranked(endpoints, key) if e.breaker.closed and e not in skipped]
    if not healthy:
        return None
    return next((e for e in healthy if e.has_room), healthy[0])
