"""A story's cast column: the proper names of its turns (models.story_cast), kept in step with them.

Each stored turn adds its new names (`merge_cast`); replacing the last turn (Regenerate) or
copying a story's first turns (a branch) recomputes them from the turns (`cast_of`), since the
text the names came from may be gone. Every function runs inside the caller's transaction.
"""

from __future__ import annotations

import json

import aiosqlite

from bot.storage.records import dumps
from models.story_cast import cast_of, merged_cast


async def merge_cast(conn: aiosqlite.Connection, story_id: int, text: str) -> None:
    """Add the names of `text`, a turn just stored, to the story's cast."""
    async with conn.execute("SELECT cast_json FROM stories WHERE id = ?", (story_id,)) as cursor:
        row = await cursor.fetchone()
    if row is None:  # the turn's insert already failed its foreign key for an unknown story
        return
    cast = merged_cast(json.loads(row[0]), text)
    await conn.execute("UPDATE stories SET cast_json = ? WHERE id = ?", (dumps(list(cast)), story_id))


async def recompute_cast(conn: aiosqlite.Connection, story_id: int) -> None:
    """The story's cast again from all its turns, in order."""
    async with conn.execute("SELECT text FROM turns WHERE story_id = ? ORDER BY position", (story_id,)) as cursor:
        texts = [row[0] for row in await cursor.fetchall()]
    await conn.execute("UPDATE stories SET cast_json = ? WHERE id = ?", (dumps(list(cast_of(texts))), story_id))


async def backfill_casts(conn: aiosqlite.Connection) -> None:
    """A migration step: stories stored before casts get theirs from the turns they have."""
    async with conn.execute("SELECT DISTINCT story_id FROM turns") as cursor:
        story_ids = [row[0] for row in await cursor.fetchall()]
    for story_id in story_ids:
        await recompute_cast(conn, story_id)
