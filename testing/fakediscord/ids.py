"""Snowflake ids that look like Discord's, so ``discord.utils.snowflake_time`` stays sensible."""

from __future__ import annotations

import itertools
import time

# Discord's epoch (2015-01-01T00:00:00Z) in milliseconds; snowflakes count from it.
DISCORD_EPOCH_MS = 1_420_070_400_000
# The low 22 bits of a snowflake hold worker, process and increment; we use them as a counter.
_INCREMENT_BITS = 22


class SnowflakeFactory:
    """Hands out strictly increasing snowflakes, so later objects always have larger ids."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._last = 0

    def next(self) -> int:
        """Return a fresh snowflake whose timestamp part is now."""
        now_ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        candidate = (now_ms << _INCREMENT_BITS) | (next(self._counter) % (1 << _INCREMENT_BITS))
        # Many ids within one millisecond (or a clock step back) must still increase.
        self._last = max(candidate, self._last + 1)
        return self._last
