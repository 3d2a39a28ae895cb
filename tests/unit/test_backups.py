"""Backups: taken while the bot writes, they restore every acknowledged paragraph; bad ones are refused."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from bot.ops.backups import BackupPlan, back_up_once, backups, first_delay_s
from bot.place import Place
from bot.restore import main as restore_main
from bot.storage import Storage
from bot.storage.backup import BadBackup, check_backup
from tests.conftest import GUILD

WRITERS = 4  # channels writing stories at once, as a loaded bot would
BACKUPS = 3


async def write_stories(service: Any, channel: int, acked: set[tuple[int, str]], stop: asyncio.Event) -> None:
    """Write paragraph after paragraph in one channel; a turn is acknowledged once "done" came
    (the service passes "done" on only after the turn is stored)."""
    place = Place(channel_id=channel, user_id=channel, guild_id=GUILD)
    count = 0
    while not stop.is_set():
        generation = await (service.write(place, "a lighthouse") if count % 3 == 0
                            else service.continue_story(place))
        if (await generation.result()).kind == "done" and generation.turn is not None:
            acked.add((generation.turn.id, generation.turn.text))
        count += 1


def turns_in(path: Path) -> set[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        return set(conn.execute("SELECT id, text FROM turns"))


async def test_backups_taken_under_load_restore_every_turn_acknowledged_before_they_began(
        service: Any, tmp_path: Path) -> None:
    plan = BackupPlan(Path(service.storage.path), tmp_path / "backups", every_s=3600, keep=BACKUPS)
    acked: set[tuple[int, str]] = set()
    stop = asyncio.Event()
    writers = [asyncio.create_task(write_stories(service, 100 + i, acked, stop)) for i in range(WRITERS)]
    taken = []
    try:
        for round_ in range(BACKUPS):
            while len(acked) < 10 * (round_ + 1):  # let the load run between backups
                await asyncio.sleep(0.02)
            before = set(acked)
            info = await back_up_once(plan, now=time.time() + round_)  # the writers go on meanwhile
            assert info is not None
            taken.append((info.path, before))
    finally:
        stop.set()
        await asyncio.gather(*writers)
    assert len(acked) > len(taken[-1][1])  # writing went on after the last backup began
    for number, (backup, before) in enumerate(taken):
        restored = tmp_path / f"restored-{number}.db"
        assert restore_main([str(backup), "--database", str(restored)]) == 0
        check_backup(restored)  # integrity_check "ok", a schema this bot knows
        async with await Storage.open(restored) as storage:  # the bot opens it as it is
            assert (await storage.counts())["turns"] >= len(before)
        assert before <= turns_in(restored)


async def test_restore_refuses_a_damaged_file_and_leaves_the_database_alone(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "bot.db"
    async with await Storage.open(database) as storage:
        await storage.start_story(guild_id=1, channel_id=2, author_id=3, topic="owls", model="m",
                                  kind="write", text="kept", settings={})
    backup = tmp_path / "backup.db"
    backup.write_bytes(database.read_bytes())
    with sqlite3.connect(backup) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'turns'").fetchone()[0]
    with backup.open("r+b") as file:  # damage the header of the page that holds the turns
        file.seek((root - 1) * page_size)
        file.write(b"\xff" * 64)
    before = database.read_bytes()
    assert restore_main([str(backup), "--database", str(database)]) == 1
    assert "not restored:" in capsys.readouterr().err
    assert database.read_bytes() == before
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("hello")
    with pytest.raises(BadBackup, match="not an SQLite database"):
        check_backup(not_sqlite)


async def test_restore_keeps_the_current_database_aside_first(tmp_path: Path) -> None:
    database, backup = tmp_path / "bot.db", tmp_path / "old.db"
    async with await Storage.open(backup) as storage:
        await storage.start_story(guild_id=1, channel_id=2, author_id=3, topic="from the backup", model="m",
                                  kind="write", text="p", settings={})
    async with await Storage.open(database) as storage:
        await storage.start_story(guild_id=1, channel_id=2, author_id=3, topic="current", model="m",
                                  kind="write", text="p", settings={})
    assert restore_main([str(backup), "--database", str(database)]) == 0
    aside = list(tmp_path.glob("bot.before-restore-*.db"))
    async with await Storage.open(database) as storage:
        restored = await storage.latest_story(2)
    assert restored is not None and restored.topic == "from the backup"
    assert len(aside) == 1
    with sqlite3.connect(aside[0]) as conn:
        assert conn.execute("SELECT topic FROM stories").fetchall() == [("current",)]


async def test_only_the_newest_backups_are_kept_and_the_next_is_due_an_interval_after_the_newest(
        tmp_path: Path) -> None:
    database = tmp_path / "bot.db"
    async with await Storage.open(database):
        pass
    plan = BackupPlan(database, tmp_path / "backups", every_s=600, keep=2)
    assert first_delay_s(plan, time.time()) == 0  # none yet: back up at once
    times = [1_700_000_000 + 3600 * hour for hour in range(4)]  # 2023-11-14 22:13:20 UTC, hourly
    for when in times:
        await back_up_once(plan, now=when)
    names = [path.name for path in plan.backups()]
    assert names == ["bot-20231115T001320Z.db", "bot-20231115T011320Z.db"]
    newest = plan.backups()[-1]
    os.utime(newest, (time.time() - 200, time.time() - 200))
    assert 390 <= first_delay_s(plan, time.time()) <= 400


async def test_backups_run_in_the_background_and_stop_with_the_bot(tmp_path: Path) -> None:
    database = tmp_path / "bot.db"
    async with await Storage.open(database):
        plan = BackupPlan(database, tmp_path / "backups", every_s=0.05, keep=3)
        async with backups(plan):
            while len(plan.backups()) < 3:
                await asyncio.sleep(0.02)
        tasks = [t for t in asyncio.all_tasks() if t.get_name() == "database-backups"]
    assert tasks == []
    assert len(plan.backups()) == 3
    assert not list(plan.folder.glob("*.partial"))
