"""Kill -9 a bot that is writing, again and again, on one database; log what it acknowledged.

    python -m tests.crash_writer DB [--rounds 24] [--seed 0]

Each round forks a child that opens DB with the real Storage, Engine and Service, reports the
database's integrity and settings as the restart finds them, and keeps several writers busy at
once, as a loaded bot would: settings changes through `Service.set_setting` (acknowledged once it
returns the confirmation a user sees) and story paragraphs through `Service.write` and
`continue_story` (acknowledged at the "done" event, which only comes after the turn is stored).
Each change is reported as a "try" line before it starts and an "ack" line once acknowledged,
written straight to a pipe. The parent SIGKILLs the child at a random moment and starts the next
round on the same file. At the end it prints every line, as JSON, for tests/unit/test_crash_safety.py.

Forking from one parent that has imported everything keeps a round to a fraction of a second;
the parent runs no torch code and starts no thread before it forks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import select
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bot.engine.worker import Engine
from bot.messages import NoStory
from bot.service import Place, Service
from bot.storage import Storage
from models.base import Prompt, UnsupportedStrategy

GUILD = 1
SETTING_CHANNELS = (11, 12, 13)  # one settings writer each
STORY_CHANNELS = (21, 22, 23)  # one story writer each
SETTING_NAMES = ("temperature", "top_k", "seed")
NEW_STORY_EVERY = 4  # paragraphs per story before a writer starts a new one
# Short greedy paragraphs: the point is the writes, not the text.
PARAGRAPH = {"strategy": "greedy", "max_new_tokens": 8, "min_new_tokens": 8, "stop_at_paragraph": False}
WORDS = ("the", "keeper", "climbed", "stairs", "lamp", "storm", "harbour", "boats", "ropes", "night")
FIRST_ACK_TIMEOUT_S = 60.0  # a child that acknowledges nothing for this long is broken
KILL_AFTER_S = (0.0, 0.4)  # a random moment in this range after the child's first acknowledgement
CHILD_ALARM_S = 120  # a child whose parent died kills itself


class WordModel:
    """A StepModel that writes WORDS in turn: cheap, so rounds are all about storage."""

    name = "words"
    vocab_size = len(WORDS) + 1  # id 0 is end-of-text
    eos_token_ids = frozenset({0})
    ngram_free_tokens: frozenset[int] = frozenset()
    sequence_breaker_tokens: frozenset[int] = frozenset({0})
    context_window = 4096
    device = torch.device("cpu")

    def encode_prompt(self, prompt: Prompt, max_new_tokens: int) -> list[int]:
        return [1 + len(prompt.history) % len(WORDS)]

    def decode_text(self, ids: list[int]) -> str:
        return " ".join(WORDS[i - 1] for i in ids if i)

    def new_batch(self) -> list[int]:
        return []  # the step count of each row

    def prefill(self, batch: list[int], prompts: list[list[int]]) -> torch.Tensor:
        batch.extend(prompt[-1] for prompt in prompts)
        return self._logits(batch[-len(prompts):])

    def decode(self, batch: list[int], tokens: torch.Tensor) -> torch.Tensor:
        batch[:] = [step + 1 for step in batch]
        return self._logits(batch)

    def keep(self, batch: list[int], rows: list[int]) -> None:
        batch[:] = [batch[i] for i in rows]

    def beam_search(self, prompt_ids: list[int], params: Any) -> list[int]:
        raise UnsupportedStrategy("no beams here")

    def _logits(self, steps: list[int]) -> torch.Tensor:
        logits = torch.zeros(len(steps), self.vocab_size)  # (B, V)
        for row, step in enumerate(steps):
            logits[row, 1 + step % len(WORDS)] = 10.0
        return logits


# -- the child: the bot, writing until it is killed ----------------------------------------------

Report = Callable[[dict[str, Any]], None]


def reporter(fd: int, round_no: int) -> Report:
    def report(record: dict[str, Any]) -> None:
        # One short write to a pipe is atomic: a line is either wholly reported or not at all.
        os.write(fd, (json.dumps({"round": round_no, **record}) + "\n").encode())
    return report


def setting_value(name: str, counter: int) -> float | int:
    if name == "temperature":
        return round(0.05 + counter % 190 / 100, 2)
    return counter % 1000 if name == "top_k" else counter


async def write_settings(service: Service, report: Report, channel: int, counter: itertools.count[int]) -> None:
    place = Place(channel_id=channel, user_id=channel, guild_id=GUILD)
    for step in itertools.count():
        name = SETTING_NAMES[step % len(SETTING_NAMES)]
        change = {"kind": "setting", "channel": channel, "name": name, "value": setting_value(name, next(counter))}
        report({"t": "try", **change})
        confirmation = await service.set_setting(place, name, str(change["value"]))
        report({"t": "ack", **change, "said": confirmation})


async def write_stories(service: Service, report: Report, channel: int) -> None:
    place = Place(channel_id=channel, user_id=channel, guild_id=GUILD)
    for step in itertools.count():
        try:
            await service.story_here(place)
            new = step % NEW_STORY_EVERY == 0
        except NoStory:
            new = True
        report({"t": "try", "kind": "turn", "channel": channel, "new": new})
        generation = await (service.write(place, f"a story in {channel}", PARAGRAPH) if new
                            else service.continue_story(place, None, PARAGRAPH))
        async for event in generation.events():
            if event.kind in ("error", "cancelled"):
                raise RuntimeError(f"generation ended with {event.kind}: {event.text}")
            if event.kind == "done" and generation.turn is not None:
                turn = generation.turn
                report({"t": "ack", "kind": "turn", "channel": channel, "story": turn.story_id,
                        "turn": turn.id, "position": turn.position, "text": turn.text})


def integrity(db: Path) -> str:
    # A second connection: closing it is not the last close, so it changes nothing on disk.
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


async def be_the_bot(db: Path, report: Report, round_no: int) -> None:
    torch.set_num_threads(1)
    engine = Engine(lambda name: WordModel(), WordModel.name, max_batch=8, max_waiting=64, max_per_user=64)
    async with await Storage.open(db) as storage, engine:
        found = {str(c): await storage.get_settings("channel", c) for c in SETTING_CHANNELS}
        report({"t": "start", "integrity": integrity(db), "settings": found})
        service = Service(storage, engine, WordModel.name, cooldown_s=0)
        counter = itertools.count(round_no * 1_000_000)
        writers = [write_settings(service, report, c, counter) for c in SETTING_CHANNELS]
        writers += [write_stories(service, report, c) for c in STORY_CHANNELS]
        await asyncio.gather(*writers)


def child(db: Path, fd: int, round_no: int) -> None:
    signal.alarm(CHILD_ALARM_S)
    report = reporter(fd, round_no)
    try:
        asyncio.run(be_the_bot(db, report, round_no))
    except BaseException as error:  # the parent reports it; the test fails on it
        report({"t": "crash", "error": repr(error)})
    finally:
        os._exit(1)


# -- the parent: start, kill, repeat ----------------------------------------------------------

def read_lines(fd: int, until: float, stop_at_ack: bool) -> tuple[bytes, bool]:
    """Bytes from the pipe until the deadline (or the first ack, or the end); True at the end."""
    data = b""
    while (remaining := until - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            return data, True
        data += chunk
        if stop_at_ack and b'"t": "ack"' in data:
            break
    return data, False


def one_round(db: Path, round_no: int, rng: random.Random) -> list[dict[str, Any]]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        child(db, write_fd, round_no)
    os.close(write_fd)
    started = time.monotonic()
    data, ended = read_lines(read_fd, started + FIRST_ACK_TIMEOUT_S, stop_at_ack=True)
    delay = rng.uniform(*KILL_AFTER_S)
    if not ended:
        more, ended = read_lines(read_fd, time.monotonic() + delay, stop_at_ack=False)
        data += more
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    while chunk := os.read(read_fd, 65536):  # what the child wrote before it died
        data += chunk
    os.close(read_fd)
    records = [json.loads(line) for line in data.decode().splitlines()]
    acks = sum(1 for r in records if r["t"] == "ack")
    return records + [{"t": "round", "round": round_no, "acks": acks, "killed": not ended,
                       "killed_after_s": round(time.monotonic() - started, 3)}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("db", type=Path)
    parser.add_argument("--rounds", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if threading.active_count() != 1:
        sys.exit("a thread runs already: forking now could deadlock the child")
    rng = random.Random(args.seed)
    for round_no in range(args.rounds):
        for record in one_round(args.db, round_no, rng):
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
