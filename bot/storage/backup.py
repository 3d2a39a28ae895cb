"""Online backups of the SQLite file, and the checks a backup passes before it is restored.

A backup reads the live database through a connection of its own with SQLite's backup API, in
one step: it copies one consistent snapshot (every transaction committed before it began) while
the bot goes on writing through its own connection (WAL lets readers and the writer overlap).
The copy is written beside its final name, checked, made a single self-contained file (journal
mode DELETE, no -wal beside it) and only then renamed into place, so a half-written backup never
carries a backup's name.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bot.storage.database import BUSY_TIMEOUT_MS, SCHEMA_VERSION

TABLES = ("settings", "stories", "turns")


class BadBackup(ValueError):
    """The file is not a backup this bot can restore; the message says why, for the owner."""


@dataclass(frozen=True)
class BackupInfo:
    """What a checked backup holds."""

    path: Path
    schema_version: int
    rows: dict[str, int]


def backup_database(source: Path, target: Path) -> BackupInfo:
    """Copy the database at `source` into a new file `target` (blocking: run it in a thread)."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.closing(sqlite3.connect(source, timeout=BUSY_TIMEOUT_MS / 1000)) as live, \
                contextlib.closing(sqlite3.connect(partial)) as copy:
            live.backup(copy)  # pages=-1: the whole file in one step, from one read snapshot
            copy.execute("PRAGMA journal_mode = DELETE")  # one file, readable on its own
        info = check_backup(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupInfo(target, info.schema_version, info.rows)


def check_backup(path: Path) -> BackupInfo:
    """Raise BadBackup unless `path` is a whole, uncorrupted database of a schema this bot knows."""
    if not path.is_file():
        raise BadBackup(f"{path} does not exist")
    with path.open("rb") as file:
        if file.read(16) != b"SQLite format 3\x00":
            raise BadBackup(f"{path} is not an SQLite database")
    try:
        # Read-only: checking a file must never change it (nor create a -wal beside it).
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if problems != ["ok"]:
                raise BadBackup(f"{path} failed the integrity check: {'; '.join(problems[:3])}")
            if not 1 <= version <= SCHEMA_VERSION or not set(TABLES) <= tables:
                raise BadBackup(f"{path} has schema version {version} and tables {sorted(tables)}: not a "
                                f"database of this bot (which knows versions 1 to {SCHEMA_VERSION})")
            rows = {table: int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]) for table in TABLES}
    except sqlite3.DatabaseError as error:
        raise BadBackup(f"{path} could not be read: {error}") from error
    return BackupInfo(path, version, rows)


def restore_database(backup: Path, database: Path) -> BackupInfo:
    """Check `backup`, then write it over `database` through SQLite (so a -wal of the old file
    is dealt with, not left to be replayed over the restored one). Blocking."""
    info = check_backup(backup)
    database.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(f"{backup.resolve().as_uri()}?mode=ro", uri=True)) as source, \
            contextlib.closing(sqlite3.connect(database, timeout=BUSY_TIMEOUT_MS / 1000)) as target:
        source.backup(target)
        target.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return info
