"""Backups while the bot runs: every BACKUP_HOURS into BACKUP_DIR, keeping the newest N.

Files are named `<database name>-<UTC time>.db`, so they sort by age. At start-up the next
backup is due one interval after the newest one already there: restarts (even a crash loop)
neither skip backups nor rotate the good ones out with a burst of new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot.background import in_background
from bot.storage.backup import BackupInfo, backup_database

log = logging.getLogger(__name__)

STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class BackupPlan:
    """Where, how often and how many."""

    database: Path
    folder: Path
    every_s: float
    keep: int

    def backups(self) -> list[Path]:
        """This database's backups in the folder, oldest first."""
        return sorted(self.folder.glob(f"{self.database.stem}-*.db"))

    def name_for(self, now: float) -> Path:
        return self.folder / f"{self.database.stem}-{datetime.fromtimestamp(now, UTC).strftime(STAMP)}.db"


async def back_up_once(plan: BackupPlan, now: float | None = None) -> BackupInfo | None:
    """Take one backup and delete the oldest beyond `plan.keep`; a failure is logged, not raised."""
    target = plan.name_for(time.time() if now is None else now)
    began = time.perf_counter()
    try:
        info = await asyncio.to_thread(backup_database, plan.database, target)
    except Exception:  # a full disk or a bad folder must not stop the bot, nor later tries
        log.exception("backup of %s into %s failed; trying again at the next interval", plan.database, target)
        return None
    log.info("backed up %s to %s in %.2f s (%s)", plan.database, target, time.perf_counter() - began,
             ", ".join(f"{count} {table}" for table, count in info.rows.items()))
    for old in plan.backups()[:-plan.keep]:
        old.unlink(missing_ok=True)
        log.info("deleted old backup %s", old)
    return info


def first_delay_s(plan: BackupPlan, now: float) -> float:
    """Seconds until the first backup: one interval after the newest existing one (now if none)."""
    existing = plan.backups()
    if not existing:
        return 0.0
    return max(0.0, existing[-1].stat().st_mtime + plan.every_s - now)


async def back_up_forever(plan: BackupPlan, clock: Callable[[], float] = time.time) -> None:
    """Back up at every interval until cancelled."""
    await asyncio.sleep(first_delay_s(plan, clock()))
    while True:
        await back_up_once(plan)
        await asyncio.sleep(plan.every_s)


@contextlib.asynccontextmanager
async def backups(plan: BackupPlan | None) -> AsyncIterator[None]:
    """Back up in the background while the body runs; None starts nothing."""
    if plan is None:
        yield
        return
    async with in_background(back_up_forever(plan), "database-backups"):
        yield
