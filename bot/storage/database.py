"""The one module that owns the SQLite connection: PRAGMAs, transactions, migrations, errors.

Shaped like mautrix's async_db: PRAGMAs on every connection, append-only migrations that set
``user_version`` in the same transaction, explicit transactions, and no opening newer databases.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.storage.cast import backfill_casts

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 2000  # wait this long for a lock: settings replies, which do not defer, must beat Discord's 3 s
SECONDS_PER_DAY = 86_400.0

# One statement of a migration, or a function of the connection for what SQL alone cannot compute
# (a backfill in Python); both run inside the migration's transaction.
Step = str | Callable[[aiosqlite.Connection], Awaitable[None]]

# Append-only: never edit a shipped step, add a new one. Step i brings the schema to version i+1.
# Each step is a list of single statements, not a script, because sqlite3's executescript()
# commits first and would break the one-transaction-per-migration guarantee.
MIGRATIONS: tuple[tuple[Step, ...], ...] = (
    (
        """CREATE TABLE settings (
            scope       TEXT    NOT NULL CHECK (scope IN ('guild', 'channel', 'thread')),
            scope_id    INTEGER NOT NULL,
            values_json TEXT    NOT NULL DEFAULT '{}',
            updated_at  REAL    NOT NULL,
            PRIMARY KEY (scope, scope_id)
        )""",
        """CREATE TABLE stories (
            id         INTEGER PRIMARY KEY,
            guild_id   INTEGER,
            channel_id INTEGER NOT NULL,
            thread_id  INTEGER UNIQUE,
            author_id  INTEGER NOT NULL,
            topic      TEXT    NOT NULL,
            model      TEXT    NOT NULL,
            message_id INTEGER,
            created_at REAL    NOT NULL,
            open       INTEGER NOT NULL DEFAULT 1
        )""",
        "CREATE INDEX stories_channel_idx ON stories (channel_id)",
        """CREATE TABLE turns (
            id               INTEGER PRIMARY KEY,
            story_id         INTEGER NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
            position         INTEGER NOT NULL,
            kind             TEXT    NOT NULL CHECK (kind IN ('write', 'continue', 'user')),
            author_id        INTEGER NOT NULL,
            direction        TEXT,
            text             TEXT    NOT NULL,
            settings_json    TEXT    NOT NULL DEFAULT '{}',
            created_at       REAL    NOT NULL,
            message_ids_json TEXT    NOT NULL DEFAULT '[]',
            UNIQUE (story_id, position)
        )""",
        "CREATE INDEX turns_created_at_idx ON turns (created_at)",
    ),
    (
        # What a generated paragraph was written with and how it ended (model, strategy, the
        # settings that differed, the seed used, a cut by the length limit), for exports.
        "ALTER TABLE turns ADD COLUMN facts_json TEXT NOT NULL DEFAULT '{}'",
    ),
    (
        # A branch ("Continue from here") is a story of its own that starts as a copy of another
        # story's first paragraphs; the link only says where it came from, so deleting the
        # original (/forget, retention) leaves the branch whole.
        "ALTER TABLE stories ADD COLUMN parent_id INTEGER REFERENCES stories (id) ON DELETE SET NULL",
        "CREATE INDEX stories_guild_idx ON stories (guild_id, created_at)",
        # Allow and block rules a server's managers set with /access (the owner's own rules live
        # in the access file); one rule per target, so allowing a blocked member replaces the block.
        """CREATE TABLE access_rules (
            guild_id  INTEGER NOT NULL,
            kind      TEXT    NOT NULL CHECK (kind IN ('user', 'role', 'channel')),
            target_id INTEGER NOT NULL,
            rule      TEXT    NOT NULL CHECK (rule IN ('allow', 'block')),
            PRIMARY KEY (guild_id, kind, target_id)
        )""",
        # Tokens written per server per UTC day, for the daily budget and /stats.
        """CREATE TABLE token_usage (
            guild_id INTEGER NOT NULL,
            day      TEXT    NOT NULL,
            tokens   INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (guild_id, day)
        )""",
    ),
    (
        # The options a story keeps from those members gave its paragraphs (/write model: ...;
        # bot.story_options): a list of {"paragraph": n, "options": {...}}, oldest first.
        "ALTER TABLE stories ADD COLUMN kept_json TEXT NOT NULL DEFAULT '[]'",
        # Its cast: the proper names of its turns so far (models.story_cast), a list oldest first,
        # updated with each turn; the stories already stored get theirs from their turns.
        "ALTER TABLE stories ADD COLUMN cast_json TEXT NOT NULL DEFAULT '[]'",
        backfill_casts,
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class DatabaseTooNew(RuntimeError):
    """The database file was written by a newer version of the bot than this one."""


class StorageUnavailable(RuntimeError):
    """SQLite refused for a reason outside the bot (another program holds the lock, the disk is
    full): nothing was changed, and a later try may work. The message is written for users."""


# SQLite's primary result codes that mean "not now" rather than a bug, in words for users.
UNAVAILABLE_REASONS = {
    sqlite3.SQLITE_BUSY: "the database is busy: another program is using it",
    sqlite3.SQLITE_FULL: "the disk is full",
}


D = TypeVar("D", bound="Database")


class Database:
    """Async access to the bot's SQLite database. Open with :meth:`open`, close with :meth:`close`.

    The tables' operations live in subclasses (bot.storage.settings, bot.storage.stories);
    `bot.storage.Storage` is all of them together.
    """

    def __init__(self, conn: aiosqlite.Connection, path: str, clock: Callable[[], float],
                 on_write: Callable[[float], None] | None = None) -> None:
        self._conn = conn
        self.path = path
        self._clock = clock
        self._on_write = on_write  # told each committed write's seconds (bot/ops/metrics.py)
        # One connection is shared by all coroutines, so a transaction must not interleave with
        # another coroutine's statements (they would join it, or read its uncommitted rows).
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(cls: type[D], path: str | Path, *, clock: Callable[[], float] = time.time,
                   on_write: Callable[[float], None] | None = None) -> D:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date.

        ``clock`` returns Unix seconds; tests pass a fake one to age rows. ``on_write`` is told
        how long each committed write transaction took, lock wait included.
        Raises :class:`DatabaseTooNew` if the file was written by newer code.
        """
        location = str(path)
        if location != ":memory:":
            Path(location).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: sqlite3 must not open transactions behind our back; we BEGIN.
        conn = await aiosqlite.connect(location, isolation_level=None)
        try:
            # Refuse before _configure, which would already write to a file we do not understand.
            _refuse_if_too_new(await _user_version(conn), location)
            await _configure(conn)
            storage = cls(conn, location, clock, on_write)
            await storage._migrate()
        except BaseException:
            await conn.close()
            raise
        return storage

    async def close(self) -> None:
        """Checkpoint the WAL into the main file and empty it, then close the connection.

        SQLite checkpoints on the last close anyway; doing it explicitly first means a clean
        shutdown leaves no WAL to recover even while another process keeps the file open.
        """
        async with self._lock:
            if self._closed:  # closing twice is harmless, as with the connection itself
                return
            self._closed = True
            await self._checkpoint()
            await self._conn.close()

    async def _checkpoint(self) -> None:
        try:
            async with self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cursor:
                row = await cursor.fetchone()
        except sqlite3.Error as error:  # closing must go on: the WAL is still valid, just longer
            log.warning("WAL checkpoint of %s failed: %s", self.path, error)
            return
        if row is not None and row[0]:  # another connection is reading: the WAL stays for now
            log.info("WAL checkpoint of %s was busy; SQLite finishes it later", self.path)

    async def __aenter__(self: D) -> D:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run the body in one ``BEGIN IMMEDIATE`` transaction: commit on success, else roll back.

        IMMEDIATE takes the write lock up front, so a read-then-write body cannot fail halfway
        with SQLITE_BUSY when another process writes in between. Not re-entrant.
        """
        asked = time.perf_counter()
        async with self._lock:
            try:
                with _unavailable_as_such():
                    await self._conn.execute("BEGIN IMMEDIATE")
                    yield self._conn
                    await self._conn.execute("COMMIT")
                if self._on_write is not None:
                    self._on_write(time.perf_counter() - asked)
            except BaseException:
                # Also runs when BEGIN itself was cancelled: aiosqlite still executes a queued
                # BEGIN, and this ROLLBACK queues behind it, so no transaction outlives the lock.
                await self._rollback()
                raise

    async def _rollback(self) -> None:
        try:
            await self._conn.execute("ROLLBACK")
        except sqlite3.Error as error:
            # The original error matters more; "no transaction is active" is expected when
            # BEGIN or COMMIT was what failed.
            if "no transaction is active" not in str(error):
                log.exception("rollback failed")

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self._lock:
            with _unavailable_as_such():
                async with self._conn.execute(sql, params) as cursor:
                    return list(await cursor.fetchall())

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = await self._fetchall(sql, params)
        return rows[0] if rows else None

    async def _migrate(self) -> None:
        version = await _user_version(self._conn)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            async with self.transaction() as conn:
                # Another process may have migrated while we waited for the write lock.
                if await _user_version(conn) >= target:
                    continue
                for step in MIGRATIONS[target - 1]:
                    if isinstance(step, str):
                        await conn.execute(step)
                    else:
                        await step(conn)
                # PRAGMA takes no parameters; target is our own int, not user input.
                await conn.execute(f"PRAGMA user_version = {int(target)}")
            log.info("migrated %s to schema version %d", self.path, target)

    # -- housekeeping ---------------------------------------------------------------------------

    async def _scrub_wal(self) -> None:
        """After a deletion users asked for, empty the WAL too: its older frames still hold the
        deleted text until SQLite happens to overwrite them (secure_delete zeroes the main file)."""
        async with self._lock:
            await self._checkpoint()

    async def probe_write(self) -> None:
        """Prove the database takes a write now (the health check): one committed transaction
        that rewrites the schema version it already has. Raises what SQLite raises."""
        async with self.transaction() as conn:
            await conn.execute(f"PRAGMA user_version = {int(SCHEMA_VERSION)}")

    async def counts(self) -> dict[str, int]:
        """Rows per table, for /stats."""
        tables = ("settings", "stories", "turns")
        row = await self._fetchone("SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {t})" for t in tables))
        return dict(zip(tables, map(int, row), strict=True))


@contextmanager
def _unavailable_as_such() -> Iterator[None]:
    """Raise SQLite's "busy" and "full" as StorageUnavailable; every other error stays as it is."""
    try:
        yield
    except sqlite3.OperationalError as error:
        reason = UNAVAILABLE_REASONS.get((getattr(error, "sqlite_errorcode", None) or 0) & 0xFF)
        if reason is None:
            raise
        raise StorageUnavailable(reason) from error


async def _configure(conn: aiosqlite.Connection) -> None:
    """Set the per-connection PRAGMAs; SQLite forgets all but journal_mode on close."""
    await conn.execute("PRAGMA foreign_keys = ON")
    async with conn.execute("PRAGMA journal_mode = WAL") as cursor:
        row = await cursor.fetchone()
    if row is None or str(row[0]).lower() != "wal":
        log.warning("journal_mode is %s, not wal (in-memory database?)", row[0] if row else None)
    # FULL, not mautrix's NORMAL: in WAL mode NORMAL can lose the last acknowledged commits on
    # power loss, and a reply the user saw must survive a crash. Writes here are small and rare.
    await conn.execute("PRAGMA synchronous = FULL")
    await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # Deleted rows (/forget, retention) are overwritten with zeros, not just marked free.
    await conn.execute("PRAGMA secure_delete = ON")


def _refuse_if_too_new(version: int, path: str) -> None:
    if version > SCHEMA_VERSION:
        raise DatabaseTooNew(
            f"database {path} has schema version {version}, but this bot only knows up to "
            f"{SCHEMA_VERSION}; run a newer bot or restore an older backup"
        )


async def _user_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0
