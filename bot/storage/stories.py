"""Stories and their turns: start, continue, regenerate, find, forget and prune."""

from __future__ import annotations

from typing import Any

import aiosqlite

from bot.storage.cast import merge_cast, recompute_cast
from bot.storage.database import SECONDS_PER_DAY, Database
from bot.storage.records import (
    GENERATED_KINDS,
    STORY_COLUMNS,
    TURN_COLUMNS,
    TURN_KINDS,
    KeptChoice,
    Story,
    Turn,
    TurnKind,
    choices_of,
    dumps,
    kept_json_of,
    story_of,
    turn_of,
)
from models.story_cast import merged_cast


class StoriesTable(Database):
    """The stories and turns tables."""

    async def _insert_story(self, conn: aiosqlite.Connection, guild_id: int | None, channel_id: int,
                            author_id: int, topic: str, model: str, kept: dict[str, Any] | None,
                            first_text: str) -> Story:
        choices = [KeptChoice(1, kept)] if kept else []
        async with conn.execute(
            "INSERT INTO stories (guild_id, channel_id, author_id, topic, model, created_at, kept_json,"
            f" cast_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {STORY_COLUMNS}",
            (guild_id, channel_id, author_id, topic, model, self._clock(), kept_json_of(choices),
             dumps(list(merged_cast((), first_text)))),
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
        kept: dict[str, Any] | None = None,
    ) -> Turn:
        """Append a turn at the story's next position (0 for the first), and its names to the
        story's cast. `kept`: options the member gave this (generated) turn, which the story keeps
        from now on, in place of earlier choices of the same options."""
        async with self.transaction() as conn:
            turn = await self._insert_turn(conn, story_id, kind, text, settings, author_id, direction, facts)
            await merge_cast(conn, story_id, text)
            if kept and kind in GENERATED_KINDS:
                await self._keep(conn, story_id, kept)
            return turn

    async def start_story(self, *, guild_id: int | None, channel_id: int, author_id: int, topic: str,
                          model: str, kind: TurnKind, text: str, settings: dict[str, Any],
                          facts: dict[str, Any] | None = None,
                          kept: dict[str, Any] | None = None) -> tuple[Story, Turn]:
        """Record a new story together with its first turn (and its cast): if the turn cannot be
        saved (disk full, a lock held elsewhere), no empty story is left behind either. `kept`:
        the options the story was started with, which it keeps for the paragraphs after."""
        async with self.transaction() as conn:
            story = await self._insert_story(conn, guild_id, channel_id, author_id, topic, model, kept, text)
            return story, await self._insert_turn(conn, story.id, kind, text, settings, author_id, None, facts)

    async def _keep(self, conn: aiosqlite.Connection, story_id: int, options: dict[str, Any]) -> None:
        """Add a choice of `options` at the story's newest generated paragraph."""
        async with conn.execute(
            "SELECT kept_json, (SELECT COUNT(*) FROM turns WHERE story_id = stories.id AND kind != 'user')"
            " FROM stories WHERE id = ?", (story_id,)) as cursor:
            kept_json, paragraphs = await cursor.fetchone()  # type: ignore[misc]
        choices = [*choices_of(kept_json), KeptChoice(int(paragraphs), dict(options))]
        await conn.execute("UPDATE stories SET kept_json = ? WHERE id = ?", (kept_json_of(choices), story_id))

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
        text is new; the story's cast is computed again from its turns. Raises LookupError if the
        story has no generated turn.
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
            if row is not None:
                await recompute_cast(conn, story_id)
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

