"""Branches and listings of stories: the paragraph a message shows, a story copied up to one of
its paragraphs ("Continue from here"), and a server's stories page by page (/story list)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.storage.database import Database
from bot.storage.records import (
    STORY_COLUMNS,
    TURN_COLUMNS,
    Story,
    Turn,
    choices_of,
    dumps,
    kept_json_of,
    story_of,
    turn_of,
)
from models.story_cast import cast_of


@dataclass(frozen=True)
class StoryListing:
    """One line of /story list: the story and how many paragraphs the bot wrote in it."""

    story: Story
    paragraphs: int


class BranchesTable(Database):
    """Reads and writes over stories and turns together, for branching and listing."""

    async def turn_for_message(self, message_id: int) -> Turn | None:
        """The generated turn that this Discord message shows (a paragraph may span several)."""
        row = await self._fetchone(
            f"SELECT {', '.join('t.' + c.strip() for c in TURN_COLUMNS.split(','))}"
            " FROM turns t, json_each(t.message_ids_json) m WHERE m.value = ? AND t.kind != 'user'"
            " ORDER BY t.id LIMIT 1", (message_id,))
        return turn_of(row) if row else None

    async def get_turn(self, turn_id: int) -> Turn | None:
        """The turn with this id, or None."""
        row = await self._fetchone(f"SELECT {TURN_COLUMNS} FROM turns WHERE id = ?", (turn_id,))
        return turn_of(row) if row else None

    async def branch_story(self, story_id: int, up_to_position: int, *, guild_id: int | None,
                           channel_id: int, author_id: int) -> tuple[Story, list[Turn]]:
        """A new story (its parent: `story_id`) holding copies of the story's turns up to and with
        `up_to_position`, all in one transaction: the original is not touched, and no half-copied
        branch is ever seen. The copies show on no message yet. The branch keeps the options its
        story kept at that paragraph, and its cast is that of the copied turns. Raises LookupError
        for an unknown story."""
        async with self.transaction() as conn:
            async with conn.execute("SELECT topic, model, kept_json FROM stories WHERE id = ?", (story_id,)) as cursor:
                found = await cursor.fetchone()
            if found is None:
                raise LookupError(f"no story with id {story_id}")
            async with conn.execute("SELECT kind, text FROM turns WHERE story_id = ? AND position <= ?"
                                    " ORDER BY position", (story_id, up_to_position)) as cursor:
                copied = list(await cursor.fetchall())
            paragraphs = sum(1 for kind, _ in copied if kind != "user")
            kept = [choice for choice in choices_of(found[2]) if choice.paragraph <= paragraphs]
            cast = cast_of(text for _, text in copied)
            async with conn.execute(
                "INSERT INTO stories (guild_id, channel_id, author_id, topic, model, created_at, parent_id,"
                f" kept_json, cast_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {STORY_COLUMNS}",
                (guild_id, channel_id, author_id, found[0], found[1], self._clock(), story_id,
                 kept_json_of(kept), dumps(list(cast))),
            ) as cursor:
                branch = story_of(await cursor.fetchone())  # type: ignore[arg-type]
            await conn.execute(
                "INSERT INTO turns (story_id, position, kind, author_id, direction, text, settings_json,"
                " created_at, facts_json) SELECT ?, position, kind, author_id, direction, text,"
                " settings_json, created_at, facts_json FROM turns WHERE story_id = ? AND position <= ?"
                " ORDER BY position", (branch.id, story_id, up_to_position))
            async with conn.execute(
                f"SELECT {TURN_COLUMNS} FROM turns WHERE story_id = ? ORDER BY position", (branch.id,)
            ) as cursor:
                turns = [turn_of(row) for row in await cursor.fetchall()]
        return branch, turns

    async def delete_story(self, story_id: int) -> None:
        """Delete one story and its turns (a branch whose thread could not be opened)."""
        async with self.transaction() as conn:
            await conn.execute("DELETE FROM stories WHERE id = ?", (story_id,))

    async def stories_in_guild(self, guild_id: int) -> list[StoryListing]:
        """This server's stories, newest first, with their paragraph counts (a listing filters
        them by what the member may see before it pages them)."""
        rows = await self._fetchall(
            f"SELECT {STORY_COLUMNS}, (SELECT COUNT(*) FROM turns WHERE turns.story_id = stories.id"
            " AND turns.kind != 'user') FROM stories WHERE guild_id = ? ORDER BY created_at DESC, id DESC",
            (guild_id,))
        return [StoryListing(story_of(row[:-1]), int(row[-1])) for row in rows]
