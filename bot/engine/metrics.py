"""Engine figures for /stats and the console: queue, batch, tokens per second, latencies."""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from bot.engine.remote.replicas import EndpointStatus

WINDOW_S = 10.0  # tokens per second is measured over this recent window
KEEP_SAMPLES = 500  # latency samples kept for percentiles
# Histogram bounds in seconds, cumulative counts kept here so an exporter (bot/ops/metrics.py)
# can publish them without the engine knowing Prometheus: one bisect per request, not per token.
FIRST_TOKEN_BOUNDS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
LATENCY_BOUNDS_S = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)

Outcome = Literal["done", "busy", "cancelled", "failed"]


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


@dataclass
class Buckets:
    """A histogram's cumulative form: observations at or under each bound, their count and sum."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bound, not cumulative; +Inf is `count`
    count: int = 0
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = self.counts or [0] * len(self.bounds)

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.bounds, value)
        if index < len(self.bounds):
            self.counts[index] += 1
        self.count += 1
        self.total += value

    def cumulative(self) -> list[tuple[float, int]]:
        """(bound, observations <= bound) for each bound, then (inf, all of them)."""
        running, pairs = 0, []
        for bound, count in zip(self.bounds, self.counts, strict=True):
            running += count
            pairs.append((bound, running))
        return pairs + [(float("inf"), self.count)]

    def copy(self) -> Buckets:
        return Buckets(self.bounds, list(self.counts), self.count, self.total)


@dataclass(frozen=True)
class MetricsExport:
    """What an exporter publishes: totals since start-up, copied under the lock."""

    tokens_total: int
    requests: dict[tuple[str, Outcome], int]
    """(model, outcome) -> requests that ended so; "busy" ones were refused by a full queue."""
    first_token: Buckets
    latency: Buckets


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
        self._requests: Counter[tuple[str, Outcome]] = Counter()
        self._first_token = Buckets(FIRST_TOKEN_BOUNDS_S)
        self._latency = Buckets(LATENCY_BOUNDS_S)

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

    def first_token(self, seconds: float) -> None:
        """A request's first token came `seconds` after it was submitted."""
        with self._lock:
            self.ttft.append(seconds)
            self._first_token.observe(seconds)

    def finished(self, latency_s: float, ok: bool, cancelled: bool = False, model: str = "") -> None:
        with self._lock:
            if ok:
                self.done += 1
                self.latency.append(latency_s)
                self._latency.observe(latency_s)
            elif cancelled:
                self.cancelled += 1
            else:
                self.failed += 1
            outcome: Outcome = "done" if ok else "cancelled" if cancelled else "failed"
            self._requests[(model, outcome)] += 1

    def refused(self, model: str) -> None:
        """A request for `model` was refused because the queue or the member's limit was full."""
        with self._lock:
            self._requests[(model, "busy")] += 1

    def export(self) -> MetricsExport:
        with self._lock:
            return MetricsExport(self.tokens_total, dict(self._requests), self._first_token.copy(),
                                 self._latency.copy())
