"""Specification of bot.storage, run against a real SQLite file built by the real migrations."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.storage import DatabaseTooNew, Storage, TurnKind
from bot.storage.database import BUSY_TIMEOUT_MS, SCHEMA_VERSION

DAY = 86_400.0


class FakeClock:
    """A clock the test moves by hand, so rows can be made old without sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bot.db"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def storage(db_path: Path, clock: FakeClock) -> AsyncIterator[Storage]:
    store = await Storage.open(db_path, clock=clock)
    yield store
    await store.close()


async def new_story(storage: Storage, *, channel_id: int = 10, thread_id: int | None = None,
                    kind: TurnKind = "write", text: str = "first", settings: dict[str, Any] | None = None) -> int:
    """A story as the service starts one: with its first turn."""
    story, _ = await storage.start_story(guild_id=1, channel_id=channel_id, author_id=7, topic="a lighthouse",
                                         model="tiny", kind=kind, text=text, settings=settings or {})
    if thread_id is not None:
        await storage.set_story_home(story.id, thread_id=thread_id)
    return story.id


async def test_migrations_from_empty_set_latest_version_and_create_tables(
    storage: Storage, db_path: Path
) -> None:
    with sqlite3.connect(db_path) as raw:
        version = raw.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert version == SCHEMA_VERSION >= 1
    assert {"settings", "stories", "turns"} <= tables


async def test_open_creates_the_parent_folder(storage: Storage, db_path: Path) -> None:
    assert db_path.is_file()


async def test_wal_mode_is_on(storage: Storage, db_path: Path) -> None:
    # journal_mode is stored in the file, so a separate connection sees what open() set.
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_connection_enforces_foreign_keys_with_full_sync_and_busy_timeout(storage: Storage) -> None:
    async with storage.transaction() as conn:
        pragmas = {}
        for name in ("foreign_keys", "synchronous", "busy_timeout"):
            async with conn.execute(f"PRAGMA {name}") as cursor:
                pragmas[name] = (await cursor.fetchone())[0]
    assert pragmas == {"foreign_keys": 1, "synchronous": 2, "busy_timeout": BUSY_TIMEOUT_MS}


async def test_reopening_an_up_to_date_database_keeps_its_version(storage: Storage, db_path: Path) -> None:
    await storage.close()
    async with await Storage.open(db_path) as again:
        assert await again.counts() == {"settings": 0, "stories": 0, "turns": 0}
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_database_newer_than_the_code_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(DatabaseTooNew, match=str(SCHEMA_VERSION + 1)):
        await Storage.open(db_path)


async def test_settings_round_trip_merges_keys_and_none_unsets(storage: Storage) -> None:
    assert await storage.get_settings("guild", 1) == {}
    await storage.update_settings("guild", 1, {"temperature": 0.8, "max_tokens": 200})
    merged = await storage.update_settings("guild", 1, {"temperature": 1.1, "top_p": None, "model": "tiny"})
    assert merged == {"temperature": 1.1, "max_tokens": 200, "model": "tiny"}
    after_unset = await storage.update_settings("guild", 1, {"max_tokens": None})
    assert after_unset == {"temperature": 1.1, "model": "tiny"}
    assert await storage.get_settings("guild", 1) == after_unset


async def test_settings_of_one_scope_do_not_leak_into_another(storage: Storage) -> None:
    await storage.update_settings("channel", 5, {"temperature": 0.5})
    assert await storage.get_settings("thread", 5) == {}
    assert await storage.get_settings("channel", 6) == {}


async def test_unknown_settings_scope_is_rejected(storage: Storage) -> None:
    with pytest.raises(ValueError, match="scope must be one of"):
        await storage.update_settings("server", 1, {"temperature": 1.0})  # type: ignore[arg-type]


async def test_reset_settings_removes_all_and_reports_whether_anything_was_there(storage: Storage) -> None:
    await storage.update_settings("thread", 3, {"temperature": 0.7})
    assert await storage.reset_settings("thread", 3) is True
    assert await storage.get_settings("thread", 3) == {}
    assert await storage.reset_settings("thread", 3) is False


async def test_unsetting_the_last_key_leaves_nothing_to_reset(storage: Storage) -> None:
    await storage.update_settings("channel", 3, {"temperature": 0.7})
    assert await storage.update_settings("channel", 3, {"temperature": None}) == {}
    assert await storage.reset_settings("channel", 3) is False


async def test_story_and_turns_round_trip(storage: Storage, clock: FakeClock) -> None:
    story, first = await storage.start_story(
        guild_id=None, channel_id=10, author_id=7, topic="a lighthouse", model="tiny",
        kind="write", text="It was dark.", settings={"t": 0.8})
    await storage.set_story_home(story.id, thread_id=20, message_id=99)
    second = await storage.add_turn(
        story.id, kind="continue", text="Then light.", settings={}, author_id=8, direction="hopeful"
    )
    await storage.set_turn_messages(second.id, [501, 502])

    loaded = await storage.get_story(story.id)
    assert loaded is not None
    assert (loaded.guild_id, loaded.channel_id, loaded.thread_id, loaded.message_id) == (None, 10, 20, 99)
    assert (loaded.topic, loaded.model, loaded.open, loaded.created_at) == (
        "a lighthouse",
        "tiny",
        True,
        clock.now,
    )
    assert await storage.story_for_thread(20) == loaded
    turns = await storage.turns(story.id)
    assert [t.position for t in turns] == [0, 1]
    assert turns[0] == first
    assert (turns[1].kind, turns[1].author_id, turns[1].direction) == ("continue", 8, "hopeful")
    assert turns[1].message_ids == (501, 502)


async def test_unknown_story_and_thread_read_as_none(storage: Storage) -> None:
    assert await storage.get_story(12345) is None
    assert await storage.story_for_thread(12345) is None
    assert await storage.latest_story(12345) is None


async def test_latest_story_matches_channel_or_thread_and_prefers_newest(
    storage: Storage, clock: FakeClock
) -> None:
    older = await new_story(storage, channel_id=10, thread_id=20)
    clock.now += 60
    newer = await new_story(storage, channel_id=10, thread_id=21)
    assert (await storage.latest_story(10)).id == newer  # type: ignore[union-attr]
    assert (await storage.latest_story(20)).id == older  # type: ignore[union-attr]


async def test_concurrent_turns_get_distinct_consecutive_positions(storage: Storage) -> None:
    story_id = await new_story(storage)
    await asyncio.gather(
        *(storage.add_turn(story_id, kind="user", text=str(i), settings={}, author_id=1) for i in range(20))
    )
    assert [t.position for t in await storage.turns(story_id)] == list(range(21))  # the first turn too


async def test_replace_last_turn_rewrites_the_last_generated_turn(storage: Storage) -> None:
    story_id = await new_story(storage, text="first", settings={"t": 1})
    generated = await storage.add_turn(
        story_id, kind="continue", text="second", settings={"t": 1}, author_id=7
    )
    await storage.set_turn_messages(generated.id, [77])
    await storage.add_turn(story_id, kind="user", text="a reader's words", settings={}, author_id=9)

    replaced = await storage.replace_last_turn(story_id, text="second, again", settings={"t": 0.5})

    assert (replaced.id, replaced.position, replaced.message_ids) == (generated.id, 1, (77,))
    turns = await storage.turns(story_id)
    assert [(t.text, t.settings) for t in turns] == [
        ("first", {"t": 1}),
        ("second, again", {"t": 0.5}),
        ("a reader's words", {}),
    ]


async def test_replace_last_turn_without_a_generated_turn_raises_lookup_error(storage: Storage) -> None:
    story_id = await new_story(storage, kind="user", text="only mine")
    with pytest.raises(LookupError):
        await storage.replace_last_turn(story_id, text="x", settings={})


async def test_updating_an_unknown_story_or_turn_raises_lookup_error(storage: Storage) -> None:
    with pytest.raises(LookupError):
        await storage.set_story_home(404, message_id=1)
    with pytest.raises(LookupError):
        await storage.set_turn_messages(404, [1])


async def test_history_survives_close_and_reopen(storage: Storage, db_path: Path) -> None:
    story_id = await new_story(storage, thread_id=20, text="kept", settings={"t": 0.9})
    await storage.update_settings("guild", 1, {"temperature": 0.9})
    before = await storage.turns(story_id)
    await storage.close()

    async with await Storage.open(db_path) as reopened:
        assert await reopened.turns(story_id) == before
        assert (await reopened.story_for_thread(20)).id == story_id  # type: ignore[union-attr]
        assert await reopened.get_settings("guild", 1) == {"temperature": 0.9}


async def test_forget_deletes_stories_and_turns_of_a_channel_or_thread(storage: Storage) -> None:
    in_channel = await new_story(storage, channel_id=10)
    in_thread = await new_story(storage, channel_id=11, thread_id=10)
    elsewhere = await new_story(storage, channel_id=12)
    for story_id in (in_channel, in_thread, elsewhere):
        await storage.add_turn(story_id, kind="continue", text="t", settings={}, author_id=7)
    assert await storage.counts() == {"settings": 0, "stories": 3, "turns": 6}

    assert await storage.forget(10) == 4

    assert await storage.counts() == {"settings": 0, "stories": 1, "turns": 2}
    assert await storage.get_story(elsewhere) is not None


async def test_prune_deletes_old_turns_and_empty_old_stories_and_keeps_new(
    storage: Storage, clock: FakeClock
) -> None:
    old_story = await new_story(storage, channel_id=10, text="old")
    mixed_story = await new_story(storage, channel_id=11, text="old too")
    clock.now += 40 * DAY
    await storage.add_turn(mixed_story, kind="continue", text="new", settings={}, author_id=7)
    fresh_story = await new_story(storage, channel_id=12, text="fresh")

    assert await storage.prune(older_than_days=30) == 2

    assert await storage.get_story(old_story) is None
    assert [t.text for t in await storage.turns(mixed_story)] == ["new"]
    assert [t.text for t in await storage.turns(fresh_story)] == ["fresh"]
    assert await storage.counts() == {"settings": 0, "stories": 2, "turns": 2}


async def test_unicode_control_characters_quotes_and_long_text_round_trip(storage: Storage) -> None:
    tricky = "Zoë 🐉 漢字 \u200b\u202e\t\r\n\x00\x07 'single' \"double\" `tick` ; DROP TABLE turns; -- \\ %_"
    long_text = ("ab\u00e9🐉" * 1500)[:6000]
    story, _ = await storage.start_story(
        guild_id=1, channel_id=10, author_id=7, topic=tricky, model="m'o\"del", kind="write", text=tricky,
        settings={})
    turn = await storage.add_turn(
        story.id, kind="continue", text=long_text, settings={tricky: tricky}, author_id=7, direction=tricky
    )
    await storage.update_settings("guild", 1, {tricky: tricky, "n": [1, 2.5, None, True]})

    assert (await storage.get_story(story.id)).topic == tricky  # type: ignore[union-attr]
    first, loaded = await storage.turns(story.id)
    assert first.text == tricky
    assert loaded == turn
    assert (loaded.text, loaded.direction, loaded.settings) == (long_text, tricky, {tricky: tricky})
    assert len(loaded.text) == 6000
    assert await storage.get_settings("guild", 1) == {tricky: tricky, "n": [1, 2.5, None, True]}


async def test_deleting_a_story_cascades_to_its_turns(storage: Storage) -> None:
    story_id = await new_story(storage)
    await storage.add_turn(story_id, kind="write", text="t", settings={}, author_id=7)
    async with storage.transaction() as conn:
        await conn.execute("DELETE FROM stories WHERE id = ?", (story_id,))
    assert await storage.counts() == {"settings": 0, "stories": 0, "turns": 0}


async def test_turn_for_a_missing_story_violates_the_foreign_key(storage: Storage) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        await storage.add_turn(404, kind="write", text="orphan", settings={}, author_id=7)
    assert (await storage.counts())["turns"] == 0


async def test_failed_transaction_rolls_back_and_storage_stays_usable(storage: Storage) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with storage.transaction() as conn:
            await conn.execute("INSERT INTO settings VALUES ('guild', 1, '{}', 0)")
            raise RuntimeError("boom")
    assert await storage.counts() == {"settings": 0, "stories": 0, "turns": 0}
    await storage.update_settings("guild", 1, {"temperature": 1.0})
    assert await storage.get_settings("guild", 1) == {"temperature": 1.0}
