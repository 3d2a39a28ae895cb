"""Retention: story history older than RETENTION_DAYS is deleted at start-up, then every hour."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from bot.background import in_background
from bot.limits import PRUNE_INTERVAL_S
from bot.storage import Storage

log = logging.getLogger(__name__)


async def prune_once(storage: Storage, days: int) -> int:
    """Delete history older than `days`; a failure is logged, never raised (the next pass retries)."""
    try:
        deleted = await storage.prune(older_than_days=days)
    except Exception:  # a locked or full database must not end retention for good
        log.exception("pruning history older than %d days failed; trying again later", days)
        return 0
    if deleted:
        log.info("deleted %d paragraph(s) older than %d days", deleted, days)
    return deleted


async def prune_forever(storage: Storage, days: int, interval_s: float = PRUNE_INTERVAL_S) -> None:
    """Prune every `interval_s` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        await prune_once(storage, days)


@contextlib.asynccontextmanager
async def retention(storage: Storage, days: int, interval_s: float = PRUNE_INTERVAL_S) -> AsyncIterator[None]:
    """Prune once before the body runs and then in the background while it does.

    `days` of 0 keeps history forever and starts nothing.
    """
    if days <= 0:
        yield
        return
    await prune_once(storage, days)
    async with in_background(prune_forever(storage, days, interval_s), "retention-prune"):
        yield
