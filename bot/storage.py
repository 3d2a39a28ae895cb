"""The one module that owns SQLite: settings per scope, stories, and their turns.

Shaped like mautrix's async_db: PRAGMAs on every connection, append-only migrations that set
``user_version`` in the same transaction, explicit transactions, and no opening newer databases.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import aiosqlite

log = logging.getLogger(__name__)

Scope = Literal["guild", "channel", "thread"]
TurnKind = Literal["write", "continue", "user"]
SCOPES: tuple[str, ...] = get_args(Scope)
TURN_KINDS: tuple[str, ...] = get_args(TurnKind)
# Turns the model wrote; Regenerate may only replace one of these, never a user's words.
GENERATED_KINDS: tuple[str, ...] = ("write", "continue")

BUSY_TIMEOUT_MS = 2000  # wait this long for a lock: settings replies, which do not defer, must beat Discord's 3 s
SECONDS_PER_DAY = 86_400.0

# Append-only: never edit a shipped step, add a new one. Step i brings the schema to version i+1.
# Each step is a list of single statements, not a script, because sqlite3's executescript()
# commits first and would break the one-transaction-per-migration guarantee.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
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


@dataclass(frozen=True)
class Story:
    """One story: the first paragraph's context and where it lives on Discord."""

    id: int
    guild_id: int | None
    channel_id: int
    thread_id: int | None
    author_id: int
    topic: str
    model: str
    message_id: int | None
    created_at: float
    open: bool


@dataclass(frozen=True)
class Turn:
    """One step of a story: a generated paragraph or a user's own words."""

    id: int
    story_id: int
    position: int
    kind: str
    author_id: int
    direction: str | None
    text: str
    settings: dict[str, Any]
    created_at: float
    message_ids: tuple[int, ...]


_STORY_COLUMNS = "id, guild_id, channel_id, thread_id, author_id, topic, model, message_id, created_at, open"
_TURN_COLUMNS = (
    "id, story_id, position, kind, author_id, direction, text, settings_json, created_at, message_ids_json"
)


def _story(row: Sequence[Any]) -> Story:
    id_, guild_id, channel_id, thread_id, author_id, topic, model, message_id, created_at, open_ = row
    return Story(
        id_, guild_id, channel_id, thread_id, author_id, topic, model, message_id, created_at, bool(open_)
    )


def _turn(row: Sequence[Any]) -> Turn:
    id_, story_id, position, kind, author_id, direction, text, settings_json, created_at, ids_json = row
    settings, message_ids = json.loads(settings_json), tuple(json.loads(ids_json))
    return Turn(id_, story_id, position, kind, author_id, direction, text, settings, created_at, message_ids)


def _check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")


def _dumps(value: Any) -> str:
    # ensure_ascii=False keeps the file readable; json round-trips every str exactly either way.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Storage:
    """Async access to the bot's SQLite database. Open with :meth:`open`, close with :meth:`close`."""

    def __init__(self, conn: aiosqlite.Connection, path: str, clock: Callable[[], float]) -> None:
        self._conn = conn
        self.path = path
        self._clock = clock
        # One connection is shared by all coroutines, so a transaction must not interleave with
        # another coroutine's statements (they would join it, or read its uncommitted rows).
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(cls, path: str | Path, *, clock: Callable[[], float] = time.time) -> Storage:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date.

        ``clock`` returns Unix seconds; tests pass a fake one to age rows.
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
            storage = cls(conn, location, clock)
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

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run the body in one ``BEGIN IMMEDIATE`` transaction: commit on success, else roll back.

        IMMEDIATE takes the write lock up front, so a read-then-write body cannot fail halfway
        with SQLITE_BUSY when another process writes in between. Not re-entrant.
        """
        async with self._lock:
            try:
                with _unavailable_as_such():
                    await self._conn.execute("BEGIN IMMEDIATE")
                    yield self._conn
                    await self._conn.execute("COMMIT")
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
                for statement in MIGRATIONS[target - 1]:
                    await conn.execute(statement)
                # PRAGMA takes no parameters; target is our own int, not user input.
                await conn.execute(f"PRAGMA user_version = {int(target)}")
            log.info("migrated %s to schema version %d", self.path, target)

    # -- settings -------------------------------------------------------------------------------

    async def get_settings(self, scope: Scope, scope_id: int) -> dict[str, Any]:
        """The settings stored for one scope, as a name -> value dict (empty if none)."""
        _check_scope(scope)
        row = await self._fetchone(
            "SELECT values_json FROM settings WHERE scope = ? AND scope_id = ?", (scope, scope_id)
        )
        return json.loads(row[0]) if row else {}

    async def update_settings(self, scope: Scope, scope_id: int, values: dict[str, Any]) -> dict[str, Any]:
        """Merge ``values`` into the scope's settings; a value of None unsets that name.

        Returns the settings after the change. A scope left with no settings loses its row.
        """
        _check_scope(scope)
        async with self.transaction() as conn:
            async with conn.execute(
                "SELECT values_json FROM settings WHERE scope = ? AND scope_id = ?", (scope, scope_id)
            ) as cursor:
                row = await cursor.fetchone()
            merged: dict[str, Any] = json.loads(row[0]) if row else {}
            for name, value in values.items():
                if value is None:
                    merged.pop(name, None)
                else:
                    merged[name] = value
            if merged:
                await conn.execute(
                    "INSERT INTO settings (scope, scope_id, values_json, updated_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (scope, scope_id) DO UPDATE"
                    " SET values_json = excluded.values_json, updated_at = excluded.updated_at",
                    (scope, scope_id, _dumps(merged), self._clock()),
                )
            else:
                await conn.execute("DELETE FROM settings WHERE scope = ? AND scope_id = ?", (scope, scope_id))
        return merged

    async def reset_settings(self, scope: Scope, scope_id: int) -> bool:
        """Remove every setting of one scope; True if there was anything to remove."""
        _check_scope(scope)
        async with self.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM settings WHERE scope = ? AND scope_id = ?", (scope, scope_id)
            )
            return cursor.rowcount > 0

    # -- stories --------------------------------------------------------------------------------

    async def create_story(
        self,
        *,
        guild_id: int | None,
        channel_id: int,
        author_id: int,
        topic: str,
        model: str,
        thread_id: int | None = None,
        message_id: int | None = None,
    ) -> Story:
        """Record a new, open story with no turns yet."""
        async with self.transaction() as conn:
            return await self._insert_story(conn, guild_id, channel_id, author_id, topic, model, thread_id, message_id)

    async def _insert_story(self, conn: aiosqlite.Connection, guild_id: int | None, channel_id: int,
                            author_id: int, topic: str, model: str, thread_id: int | None = None,
                            message_id: int | None = None) -> Story:
        async with conn.execute(
            "INSERT INTO stories (guild_id, channel_id, thread_id, author_id, topic, model,"
            f" message_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {_STORY_COLUMNS}",
            (guild_id, channel_id, thread_id, author_id, topic, model, message_id, self._clock()),
        ) as cursor:
            return _story(await cursor.fetchone())  # type: ignore[arg-type]

    async def set_story_home(self, story_id: int, *, thread_id: int | None = None,
                             message_id: int | None = None) -> None:
        """Record the thread a story continues in and the message that started it, in one update
        so that a reader never sees one without the other. None leaves a column as it is.
        Raises LookupError for an unknown story."""
        async with self.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE stories SET thread_id = COALESCE(?, thread_id), message_id = COALESCE(?, message_id)"
                " WHERE id = ?", (thread_id, message_id, story_id))
            if cursor.rowcount == 0:
                raise LookupError(f"no story with id {story_id}")

    async def get_story(self, story_id: int) -> Story | None:
        """The story with this id, or None."""
        row = await self._fetchone(f"SELECT {_STORY_COLUMNS} FROM stories WHERE id = ?", (story_id,))
        return _story(row) if row else None

    async def story_for_thread(self, thread_id: int) -> Story | None:
        """The story that lives in this thread, or None."""
        row = await self._fetchone(f"SELECT {_STORY_COLUMNS} FROM stories WHERE thread_id = ?", (thread_id,))
        return _story(row) if row else None

    async def latest_story(self, channel_id: int) -> Story | None:
        """The newest story started in this channel or living in this thread, or None."""
        row = await self._fetchone(
            f"SELECT {_STORY_COLUMNS} FROM stories WHERE channel_id = ? OR thread_id = ?"
            " ORDER BY created_at DESC, id DESC LIMIT 1",
            (channel_id, channel_id),
        )
        return _story(row) if row else None

    # -- turns ----------------------------------------------------------------------------------

    async def add_turn(
        self,
        story_id: int,
        *,
        kind: TurnKind,
        text: str,
        settings: dict[str, Any],
        author_id: int,
        direction: str | None = None,
    ) -> Turn:
        """Append a turn at the story's next position (0 for the first)."""
        async with self.transaction() as conn:
            return await self._insert_turn(conn, story_id, kind, text, settings, author_id, direction)

    async def start_story(self, *, guild_id: int | None, channel_id: int, author_id: int, topic: str,
                          model: str, kind: TurnKind, text: str, settings: dict[str, Any]) -> tuple[Story, Turn]:
        """Record a new story together with its first turn: if the turn cannot be saved (disk
        full, a lock held elsewhere), no empty story is left behind either."""
        async with self.transaction() as conn:
            story = await self._insert_story(conn, guild_id, channel_id, author_id, topic, model)
            return story, await self._insert_turn(conn, story.id, kind, text, settings, author_id, None)

    async def _insert_turn(self, conn: aiosqlite.Connection, story_id: int, kind: TurnKind, text: str,
                           settings: dict[str, Any], author_id: int, direction: str | None) -> Turn:
        if kind not in TURN_KINDS:
            raise ValueError(f"kind must be one of {TURN_KINDS}, got {kind!r}")
        # Computing the position inside the write transaction keeps positions gapless
        # and unique even when two continuations race.
        async with conn.execute(
            "INSERT INTO turns (story_id, position, kind, author_id, direction, text, settings_json,"
            " created_at) VALUES (?, (SELECT COALESCE(MAX(position) + 1, 0) FROM turns"
            f" WHERE story_id = ?), ?, ?, ?, ?, ?, ?) RETURNING {_TURN_COLUMNS}",
            (story_id, story_id, kind, author_id, direction, text, _dumps(settings), self._clock()),
        ) as cursor:
            return _turn(await cursor.fetchone())  # type: ignore[arg-type]

    async def replace_last_turn(self, story_id: int, *, text: str, settings: dict[str, Any]) -> Turn:
        """Replace the text and settings of the story's last generated turn (Regenerate).

        The turn keeps its id, position and message ids; its created_at becomes now, since the
        text is new. Raises LookupError if the story has no generated turn.
        """
        placeholders = ", ".join("?" for _ in GENERATED_KINDS)
        async with self.transaction() as conn:
            async with conn.execute(
                "UPDATE turns SET text = ?, settings_json = ?, created_at = ? WHERE id = ("
                f"SELECT id FROM turns WHERE story_id = ? AND kind IN ({placeholders})"
                f" ORDER BY position DESC LIMIT 1) RETURNING {_TURN_COLUMNS}",
                (text, _dumps(settings), self._clock(), story_id, *GENERATED_KINDS),
            ) as cursor:
                row = await cursor.fetchone()
        if row is None:
            raise LookupError(f"story {story_id} has no generated turn to replace")
        return _turn(row)

    async def set_turn_messages(self, turn_id: int, message_ids: list[int]) -> None:
        """Record the Discord messages that show this turn. Raises LookupError for an unknown turn."""
        async with self.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE turns SET message_ids_json = ? WHERE id = ?",
                (_dumps([int(m) for m in message_ids]), turn_id),
            )
            if cursor.rowcount == 0:
                raise LookupError(f"no turn with id {turn_id}")

    async def turns(self, story_id: int) -> list[Turn]:
        """All turns of a story, in order."""
        rows = await self._fetchall(
            f"SELECT {_TURN_COLUMNS} FROM turns WHERE story_id = ? ORDER BY position", (story_id,)
        )
        return [_turn(row) for row in rows]

    # -- housekeeping ---------------------------------------------------------------------------

    async def forget(self, channel_id: int) -> int:
        """Delete every story started in this channel or living in this thread, with its turns.

        Returns the number of turns deleted. Settings are left alone.
        """
        where = "channel_id = ? OR thread_id = ?"
        async with self.transaction() as conn:
            async with conn.execute(
                f"SELECT COUNT(*) FROM turns WHERE story_id IN (SELECT id FROM stories WHERE {where})",
                (channel_id, channel_id),
            ) as cursor:
                (turn_count,) = await cursor.fetchone()  # type: ignore[misc]
            await conn.execute(f"DELETE FROM stories WHERE {where}", (channel_id, channel_id))
        await self._scrub_wal()
        return int(turn_count)

    async def prune(self, older_than_days: float, now: float | None = None) -> int:
        """Delete turns older than ``older_than_days``, then stories that old left with no turns.

        ``now`` defaults to the storage clock. Returns the number of turns deleted.
        """
        if older_than_days < 0:
            raise ValueError(f"older_than_days must be >= 0, got {older_than_days}")
        cutoff = (self._clock() if now is None else now) - older_than_days * SECONDS_PER_DAY
        async with self.transaction() as conn:
            cursor = await conn.execute("DELETE FROM turns WHERE created_at < ?", (cutoff,))
            deleted = cursor.rowcount
            # A fresh story may have no turns yet because it is still being written: keep it.
            await conn.execute(
                "DELETE FROM stories WHERE created_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM turns WHERE turns.story_id = stories.id)",
                (cutoff,),
            )
        if deleted:
            await self._scrub_wal()
        return deleted

    async def _scrub_wal(self) -> None:
        """After a deletion users asked for, empty the WAL too: its older frames still hold the
        deleted text until SQLite happens to overwrite them (secure_delete zeroes the main file)."""
        async with self._lock:
            await self._checkpoint()

    async def counts(self) -> dict[str, int]:
        """Rows per table, for /stats and tests."""
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
