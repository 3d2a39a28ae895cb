"""Kill -9 while writing, start again, many times: the database stays intact and nothing a user
was told is saved goes missing. tests/crash_writer.py does the writing and the killing."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from bot.storage import Storage

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 24

Record = dict[str, Any]


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    """The database after ROUNDS killed writers, and every line they reported."""
    db = tmp_path_factory.mktemp("crash") / "bot.db"
    result = subprocess.run([sys.executable, "-m", "tests.crash_writer", str(db), "--rounds", str(ROUNDS)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return db, [json.loads(line) for line in result.stdout.splitlines()]


def of(records: list[Record], t: str, kind: str | None = None) -> list[Record]:
    return [r for r in records if r["t"] == t and (kind is None or r.get("kind") == kind)]


def test_every_round_was_killed_in_the_middle_of_writing(crashed: tuple[Path, list[Record]]) -> None:
    _, records = crashed
    rounds = of(records, "round")
    assert [r["round"] for r in rounds] == list(range(ROUNDS)) and all(r["killed"] for r in rounds)
    assert not of(records, "crash")
    for number in range(ROUNDS):
        mine = [r for r in records if r["round"] == number]
        assert of(mine, "ack"), f"round {number} acknowledged nothing before the kill"
        assert len(of(mine, "try")) > len(of(mine, "ack")), f"round {number} had no write under way"
    assert of(records, "ack", "setting") and of(records, "ack", "turn")


def test_each_restart_after_a_kill_finds_the_database_intact(crashed: tuple[Path, list[Record]]) -> None:
    _, records = crashed
    assert [r["integrity"] for r in of(records, "start")] == ["ok"] * ROUNDS


async def test_the_final_database_is_intact(crashed: tuple[Path, list[Record]]) -> None:
    db, _ = crashed
    async with await Storage.open(db):  # the bot starting once more
        with contextlib.closing(sqlite3.connect(db)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


class SettingLog:
    """Every settings change tried so far, per (channel, name), and which were acknowledged."""

    def __init__(self) -> None:
        self.tries: dict[tuple[int, str], list[list[Any]]] = defaultdict(list)  # [value, acked]

    def add(self, record: Record) -> None:
        tries = self.tries[(record["channel"], record["name"])]
        if record["t"] == "try":
            tries.append([record["value"], False])
            return
        # One writer per key, one change at a time: an ack answers the latest try.
        assert tries[-1][0] == record["value"] and record["said"].startswith(f"{record['name']} is now ")
        tries[-1][1] = True

    def allowed(self, key: tuple[int, str]) -> list[Any]:
        """The last acknowledged value, or any unacknowledged one tried after it (None: unset)."""
        tries = self.tries[key]
        acked = [i for i, (_, ok) in enumerate(tries) if ok]
        return [value for value, _ in tries[acked[-1]:]] if acked else [None] + [v for v, _ in tries]


def test_every_restart_finds_every_acknowledged_setting(crashed: tuple[Path, list[Record]]) -> None:
    _, records = crashed
    log = SettingLog()
    for record in records:
        if record["t"] == "start":  # what the bot found on starting again after a kill
            for (channel, name) in log.tries:
                found = record["settings"][str(channel)].get(name)
                assert found in log.allowed((channel, name)), (record["round"], channel, name, found)
        elif record.get("kind") == "setting":
            log.add(record)


async def test_the_last_acknowledged_settings_are_in_the_final_database(
        crashed: tuple[Path, list[Record]]) -> None:
    db, records = crashed
    log = SettingLog()
    for record in records:  # in the order written
        if record.get("kind") == "setting":
            log.add(record)
    async with await Storage.open(db) as storage:
        for (channel, name) in log.tries:
            stored = (await storage.get_settings("channel", channel)).get(name)
            assert stored in log.allowed((channel, name)), (channel, name, stored)


async def test_every_acknowledged_paragraph_is_stored_where_it_was_said_to_be(
        crashed: tuple[Path, list[Record]]) -> None:
    db, records = crashed
    acked = of(records, "ack", "turn")
    async with await Storage.open(db) as storage:
        stories = {story: await storage.turns(story) for story in {r["story"] for r in acked}}
    by_id = {turn.id: turn for turns in stories.values() for turn in turns}
    for record in acked:
        turn = by_id.get(record["turn"])
        assert turn is not None, f"acknowledged paragraph lost: {record}"
        assert (turn.story_id, turn.position, turn.text) == (record["story"], record["position"], record["text"])
    for turns in stories.values():
        assert [t.position for t in turns] == list(range(len(turns)))  # no gaps, no doubles
