"""Fault injection: answer chosen REST calls with 429s, 5xx or a delay."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

# discord.py retries a 429 only if it looks like it came through Discord's proxy.
RATE_LIMIT_VIA = "1.1 google"


@dataclass
class Fault:
    """What to do to one matched call: wait ``delay`` seconds, then answer ``status`` (or pass)."""

    status: int | None
    retry_after: float = 0.1
    delay: float = 0.0


@dataclass
class FaultRule:
    """Applies ``fault`` to the next ``times`` calls whose method and path match."""

    method: str
    path_pattern: re.Pattern[str]
    fault: Fault
    times: int

    def matches(self, method: str, path: str) -> bool:
        """Whether a call with this method and path (relative to /api/v10) is targeted."""
        return (self.method in ("*", method)) and self.path_pattern.search(path) is not None


@dataclass
class RateRule:
    """Answers a random ``fraction`` of matching calls with one of ``statuses``."""

    method: str
    path_pattern: re.Pattern[str]
    fraction: float
    statuses: tuple[int, ...]
    retry_after: float
    rng: random.Random


class FaultInjector:
    """Holds the rules; one-shot rules apply first, in the order they were added."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._rate: RateRule | None = None

    def inject(
        self,
        method: str,
        path_regex: str,
        status: int | None = 429,
        times: int = 1,
        retry_after: float = 0.1,
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``times`` matching calls with ``status`` after ``delay`` seconds.

        ``status=None`` only delays. ``path_regex`` is searched in the path relative to /api/v10.
        """
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        if status is None and delay <= 0:
            raise ValueError("a fault needs a status, a positive delay, or both")
        rule = FaultRule(method.upper(), re.compile(path_regex), Fault(status, retry_after, delay), times)
        self._rules.append(rule)

    def inject_rate(
        self,
        fraction: float,
        statuses: Sequence[int] = (429,),
        seed: int = 0,
        method: str = "*",
        path_regex: str = "",
        retry_after: float = 0.05,
    ) -> None:
        """Fail a seeded-random ``fraction`` of matching calls with one of ``statuses``."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {fraction}")
        if not statuses:
            raise ValueError("statuses must not be empty")
        self._rate = RateRule(
            method.upper(),
            re.compile(path_regex),
            fraction,
            tuple(statuses),
            retry_after,
            random.Random(seed),
        )

    def clear(self) -> None:
        """Remove every rule."""
        self._rules.clear()
        self._rate = None

    def take(self, method: str, path: str) -> Fault | None:
        """The fault for this call, if any, using up one of its rule's ``times``."""
        for rule in self._rules:
            if rule.matches(method, path):
                rule.times -= 1
                if rule.times == 0:
                    self._rules.remove(rule)
                return rule.fault
        rate = self._rate
        if rate is None or rate.method not in ("*", method) or not rate.path_pattern.search(path):
            return None
        if rate.rng.random() >= rate.fraction:
            return None
        return Fault(rate.rng.choice(rate.statuses), rate.retry_after)
