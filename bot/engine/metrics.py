"""Engine figures for /stats and the console: queue, batch, tokens per second, latencies."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.engine.remote.replicas import EndpointStatus

WINDOW_S = 10.0  # tokens per second is measured over this recent window
KEEP_SAMPLES = 500  # latency samples kept for percentiles


@dataclass(frozen=True)
class EngineStats:
    """A snapshot of the engine, safe to show to users."""

    queue_length: int
    running: int
    tokens_per_s: float
    ttft_p50_s: float | None
    latency_p50_s: float | None
    requests_done: int
    requests_failed: int
    tokens_total: int
    models: tuple[str, ...]
    device: str
    uptime_s: float
    requests_cancelled: int = 0
    """Stopped by a member (Stop), counted apart from failures."""
    endpoints: tuple[EndpointStatus, ...] = ()
    """The URLs of remote models: up, down (circuit open) or being probed, and requests in flight."""


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by nearest rank, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Metrics:
    """Counters the worker thread updates and the asyncio side reads."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._token_times: deque[tuple[float, int]] = deque()
        self.ttft: deque[float] = deque(maxlen=KEEP_SAMPLES)
        self.latency: deque[float] = deque(maxlen=KEEP_SAMPLES)
        self.tokens_total = 0
        self.done = 0
        self.failed = 0
        self.cancelled = 0

    def tokens(self, count: int) -> None:
        now = time.monotonic()
        with self._lock:
            self.tokens_total += count
            self._token_times.append((now, count))
            while self._token_times and self._token_times[0][0] < now - WINDOW_S:
                self._token_times.popleft()

    def tokens_per_s(self) -> float:
        now = time.monotonic()
        with self._lock:
            recent = [(t, n) for t, n in self._token_times if t >= now - WINDOW_S]
        if not recent:
            return 0.0
        span = max(now - recent[0][0], 1.0)
        return sum(n for _, n in recent) / span

    def finished(self, latency_s: float, ok: bool, cancelled: bool = False) -> None:
        with self._lock:
            if ok:
                self.done += 1
                self.latency.append(latency_s)
            elif cancelled:
                self.cancelled += 1
            else:
                self.failed += 1
