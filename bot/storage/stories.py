"""Stories and their turns: start, continue, regenerate, find, forget and prune."""

from __future__ import annotations

from typing import Any

import aiosqlite

from bot.storage.database import SECONDS_PER_DAY, Database
from bot.storage.records import (
    GENERATED_KINDS,
    STORY_COLUMNS,
    TURN_COLUMNS,
    TURN_KINDS,
    Story,
    Turn,
    TurnKind,
    dumps,
    story_of,
    turn_of,
)


class StoriesTable(Database):
    """The stories and turns tables."""

    async def _insert_story(self, conn: aiosqlite.Connection, guild_id: int | None, channel_id: int,
                            author_id: int, topic: str, model: str, thread_id: int | None = None,
                            message_id: int | None = None) -> Story:
        async with conn.execute(
            "INSERT INTO stories (guild_id, channel_id, thread_id, author_id, topic, model,"
            f" message_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {STORY_COLUMNS}",
            (guild_id, channel_id, thread_id, author_id, topic, model, message_id, self._clock()),
        ) as cursor:
            return story_of(await cursor.fetchone())  # type: ignore[arg-type]

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
        row = await self._fetchone(f"SELECT {STORY_COLUMNS} FROM stories WHERE id = ?", (story_id,))
        return story_of(row) if row else None

    async def story_for_thread(self, thread_id: int) -> Story | None:
        """The story that lives in this thread, or None."""
        row = await self._fetchone(f"SELECT {STORY_COLUMNS} FROM stories WHERE thread_id = ?", (thread_id,))
        return story_of(row) if row else None

    async def latest_story(self, channel_id: int) -> Story | None:
        """The newest story started in this channel or living in this thread, or None."""
        row = await self._fetchone(
            f"SELECT {STORY_COLUMNS} FROM stories WHERE channel_id = ? OR thread_id = ?"
            " ORDER BY created_at DESC, id DESC LIMIT 1",
            (channel_id, channel_id),
        )
        return story_of(row) if row else None

    async def stories_here(self, channel_id: int) -> list[Story]:
        """Every story started in this channel or living in this thread (what `forget` deletes)."""
        rows = await self._fetchall(
            f"SELECT {STORY_COLUMNS} FROM stories WHERE channel_id = ? OR thread_id = ? ORDER BY id",
            (channel_id, channel_id),
        )
        return [story_of(row) for row in rows]

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
        facts: dict[str, Any] | None = None,
    ) -> Turn:
        """Append a turn at the story's next position (0 for the first)."""
        async with self.transaction() as conn:
            return await self._insert_turn(conn, story_id, kind, text, settings, author_id, direction, facts)

    async def start_story(self, *, guild_id: int | None, channel_id: int, author_id: int, topic: str,
                          model: str, kind: TurnKind, text: str, settings: dict[str, Any],
                          facts: dict[str, Any] | None = None) -> tuple[Story, Turn]:
        """Record a new story together with its first turn: if the turn cannot be saved (disk
        full, a lock held elsewhere), no empty story is left behind either."""
        async with self.transaction() as conn:
            story = await self._insert_story(conn, guild_id, channel_id, author_id, topic, model)
            return story, await self._insert_turn(conn, story.id, kind, text, settings, author_id, None, facts)

    async def _insert_turn(self, conn: aiosqlite.Connection, story_id: int, kind: TurnKind, text: str,
                           settings: dict[str, Any], author_id: int, direction: str | None,
                           facts: dict[str, Any] | None = None) -> Turn:
        if kind not in TURN_KINDS:
            raise ValueError(f"kind must be one of {TURN_KINDS}, got {kind!r}")
        # Computing the position inside the write transaction keeps positions gapless
        # and unique even when two continuations race.
        async with conn.execute(
            "INSERT INTO turns (story_id, position, kind, author_id, direction, text, settings_json,"
            " created_at, facts_json) VALUES (?, (SELECT COALESCE(MAX(position) + 1, 0) FROM turns"
            f" WHERE story_id = ?), ?, ?, ?, ?, ?, ?, ?) RETURNING {TURN_COLUMNS}",
            (story_id, story_id, kind, author_id, direction, text, dumps(settings), self._clock(),
             dumps(facts or {})),
        ) as cursor:
            return turn_of(await cursor.fetchone())  # type: ignore[arg-type]

    async def replace_last_turn(self, story_id: int, *, text: str, settings: dict[str, Any],
                                facts: dict[str, Any] | None = None) -> Turn:
        """Replace the text and settings of the story's last generated turn (Regenerate).

        The turn keeps its id, position and message ids; its created_at becomes now, since the
        text is new. Raises LookupError if the story has no generated turn.
        """
        placeholders = ", ".join("?" for _ in GENERATED_KINDS)
        async with self.transaction() as conn:
            async with conn.execute(
                "UPDATE turns SET text = ?, settings_json = ?, created_at = ?, facts_json = ? WHERE id = ("
                f"SELECT id FROM turns WHERE story_id = ? AND kind IN ({placeholders})"
                f" ORDER BY position DESC LIMIT 1) RETURNING {TURN_COLUMNS}",
                (text, dumps(settings), self._clock(), dumps(facts or {}), story_id, *GENERATED_KINDS),
            ) as cursor:
                row = await cursor.fetchone()
        if row is None:
            raise LookupError(f"story {story_id} has no generated turn to replace")
        return turn_of(row)

    async def set_turn_messages(self, turn_id: int, message_ids: list[int]) -> None:
        """Record the Discord messages that show this turn. Raises LookupError for an unknown turn."""
        async with self.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE turns SET message_ids_json = ? WHERE id = ?",
                (dumps([int(m) for m in message_ids]), turn_id),
            )
            if cursor.rowcount == 0:
                raise LookupError(f"no turn with id {turn_id}")

    async def turns(self, story_id: int) -> list[Turn]:
        """All turns of a story, in order."""
        rows = await self._fetchall(
            f"SELECT {TURN_COLUMNS} FROM turns WHERE story_id = ? ORDER BY position", (story_id,)
        )
        return [turn_of(row) for row in rows]

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

