"""A circuit breaker per URL: closed -> open after repeated failures -> half-open -> closed.

While open, requests fail fast (or go to another replica) instead of each waiting for a
timeout; once the cool-down has passed it is half-open, and a probe (`/v1/models`) decides:
closed again on success, open again (with a longer cool-down) on failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]
FAILURES_TO_OPEN = 3  # failures in a row that mark a URL down
COOLDOWN_S = 5.0  # first wait before a down URL is probed
MAX_COOLDOWN_S = 60.0  # the wait doubles after each failed probe, up to this


class CircuitBreaker:
    """Counts failures in a row; `state` says whether requests may go to the URL."""

    def __init__(self, failures_to_open: int = FAILURES_TO_OPEN, cooldown_s: float = COOLDOWN_S,
                 max_cooldown_s: float = MAX_COOLDOWN_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures_to_open = failures_to_open
        self.base_cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self._clock = clock
        self.failures = 0
        self.cooldown_s = cooldown_s
        self._opened_at: float | None = None
        self.last_error = ""

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self._opened_at >= self.cooldown_s else "open"

    @property
    def closed(self) -> bool:
        """Whether requests may go to the URL now."""
        return self._opened_at is None

    def success(self) -> None:
        """A request or probe went through: the URL is up."""
        self.failures = 0
        self.cooldown_s = self.base_cooldown_s
        self._opened_at = None
        self.last_error = ""

    def failure(self, reason: str = "") -> bool:
        """A request or probe failed; True when this failure opened the breaker."""
        self.last_error = reason or self.last_error
        if self.state == "half_open":  # the probe failed: wait longer before the next
            self.cooldown_s = min(self.cooldown_s * 2, self.max_cooldown_s)
            self._opened_at = self._clock()
            return False
        self.failures += 1
        if self._opened_at is None and self.failures >= self.failures_to_open:
            self._opened_at = self._clock()
            return True
        return False
