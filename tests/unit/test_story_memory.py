"""What a story keeps with it in storage: the options it was started with (or given later), and its
cast of names, kept in step with its turns, copied by a branch and built for older databases.
Run against a real SQLite file built by the real migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.storage import KeptChoice, Storage, Story
from bot.storage.database import MIGRATIONS, SCHEMA_VERSION

OPENING = "Elena Rosa walked to the harbour. The boats waited for Elena."
MARCO = "Then Marco came down the hill with a lantern."
NOBODY = "The wind rose and the waves grew tall."


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    store = await Storage.open(tmp_path / "bot.db")
    yield store
    await store.close()


async def started(storage: Storage, kept: dict[str, str] | None = None, text: str = OPENING) -> Story:
    story, _ = await storage.start_story(guild_id=1, channel_id=10, author_id=7, topic="a harbour", model="tiny",
                                         kind="write", text=text, settings={}, kept=kept)
    return story


async def reread(storage: Storage, story: Story) -> Story:
    found = await storage.get_story(story.id)
    assert found is not None
    return found


async def test_a_story_keeps_the_options_it_was_started_with_as_its_first_paragraphs(storage: Storage) -> None:
    story = await started(storage, {"model": "llamacpp", "style": "noir"})
    stored = await reread(storage, story)
    assert story == stored
    assert stored.choices == (KeptChoice(1, {"model": "llamacpp", "style": "noir"}),)
    assert stored.kept == {"model": "llamacpp", "style": "noir"}
    assert stored.kept_since == {"model": 1, "style": 1}


async def test_a_story_started_without_options_keeps_none(storage: Storage) -> None:
    stored = await reread(storage, await started(storage))
    assert stored.choices == () and stored.kept == {}


async def test_a_later_choice_replaces_the_kept_option_and_counts_only_generated_paragraphs(
        storage: Storage) -> None:
    story = await started(storage, {"model": "llamacpp", "style": "noir"})
    await storage.add_turn(story.id, kind="user", text="A member's own line.", settings={}, author_id=8)
    await storage.add_turn(story.id, kind="continue", text=NOBODY, settings={}, author_id=7,
                           kept={"model": "smollm2"})
    stored = await reread(storage, story)
    assert stored.kept == {"model": "smollm2", "style": "noir"}
    assert stored.kept_since == {"model": 2, "style": 1}


async def test_a_members_line_changes_no_kept_option(storage: Storage) -> None:
    story = await started(storage, {"model": "llamacpp"})
    await storage.add_turn(story.id, kind="user", text="hi", settings={}, author_id=8, kept={"model": "lstm"})
    assert (await reread(storage, story)).kept == {"model": "llamacpp"}


async def test_the_cast_starts_with_the_first_paragraph_and_grows_with_every_turn(storage: Storage) -> None:
    story = await started(storage)
    assert story.cast == ("Elena Rosa",)
    await storage.add_turn(story.id, kind="continue", text=MARCO, settings={}, author_id=7)
    await storage.add_turn(story.id, kind="user", text="And Nadia followed Marco.", settings={}, author_id=8)
    assert (await reread(storage, story)).cast == ("Elena Rosa", "Marco", "Nadia")


async def test_writing_the_last_paragraph_again_recomputes_the_cast_from_the_turns(storage: Storage) -> None:
    story = await started(storage)
    await storage.add_turn(story.id, kind="continue", text=MARCO, settings={}, author_id=7)
    await storage.replace_last_turn(story.id, text=NOBODY, settings={})
    assert (await reread(storage, story)).cast == ("Elena Rosa",)  # Marco's paragraph is gone


async def test_a_branch_keeps_the_options_and_the_cast_as_they_were_at_its_paragraph(storage: Storage) -> None:
    story = await started(storage, {"model": "llamacpp", "style": "noir"})
    second = await storage.add_turn(story.id, kind="continue", text=NOBODY, settings={}, author_id=7,
                                    kept={"strategy": "greedy"})
    await storage.add_turn(story.id, kind="continue", text=MARCO, settings={}, author_id=7, kept={"model": "lstm"})
    branch, copies = await storage.branch_story(story.id, second.position, guild_id=1, channel_id=10, author_id=9)
    assert [c.text for c in copies] == [OPENING, NOBODY]
    assert branch.kept == {"model": "llamacpp", "style": "noir", "strategy": "greedy"}  # not the later lstm
    assert branch.cast == ("Elena Rosa",)  # Marco came after the branch point
    assert await reread(storage, branch) == branch
    original = await reread(storage, story)
    assert original.kept["model"] == "lstm" and original.cast == ("Elena Rosa", "Marco")


async def test_kept_options_and_cast_survive_a_restart(storage: Storage, tmp_path: Path) -> None:
    story = await started(storage, {"strategy": "beam"})
    await storage.close()
    async with await Storage.open(tmp_path / "bot.db") as reopened:
        again = await reopened.get_story(story.id)
    assert again is not None and again.kept == {"strategy": "beam"} and again.cast == ("Elena Rosa",)


async def test_a_database_from_before_kept_options_and_casts_migrates_with_casts_from_its_turns(
        tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:  # the schema as version 3 left it, with one story
        for step in MIGRATIONS[:3]:
            for statement in step:
                assert isinstance(statement, str)
                raw.execute(statement)
        raw.execute("PRAGMA user_version = 3")
        raw.execute("INSERT INTO stories (id, channel_id, author_id, topic, model, created_at)"
                    " VALUES (1, 10, 7, 'a harbour', 'tiny', 0)")
        raw.executemany("INSERT INTO turns (story_id, position, kind, author_id, text, created_at)"
                        " VALUES (1, ?, ?, 7, ?, 0)", [(0, "write", OPENING), (1, "continue", MARCO)])
    async with await Storage.open(path) as storage:
        story = await storage.get_story(1)
        await storage.add_turn(1, kind="continue", text="And Nadia waved at Marco.", settings={}, author_id=7)
        after = await storage.get_story(1)
    with sqlite3.connect(path) as raw:
        version = raw.execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION
    assert story is not None and story.kept == {} and story.cast == ("Elena Rosa", "Marco")
    assert after is not None and after.cast == ("Elena Rosa", "Marco", "Nadia")
