"""Faults over the wire: Discord failing, the gateway dropping, the worker, the database and the disk.

After each fault the bot still serves a fresh /write, every affected user's reply ends with the
complete paragraph or a clear message, what was acknowledged is stored, and nothing is posted twice.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.discord.stream import STARTING, WAITING
from bot.discord.views import CONTINUE_ID, REGENERATE_ID
from bot.engine.requests import Failure, GenerationRequest
from bot.engine.worker import Engine
from bot.generation import failure_message
from bot.limits import MESSAGE_LIMIT, WRITING_MARKER
from bot.storage import Storage
from bot.storage import database as storage_database
from models.base import Prompt
from models.params import GenerationParams
from testing.buttons import button_ids
from testing.fakediscord.gateway import IDENTIFY, RESUME
from tests.conftest import DISCORD_TEST_SETTINGS, DiscordRig, ScriptedModel, is_final, paragraph_of

SLOW = {**DISCORD_TEST_SETTINGS, "max_new_tokens": 24}  # long enough to fault in the middle
NOT_SAVED = "Sorry: I wrote this paragraph but could not save it"
WRITES_UNDER_FAULTS = 10



def assert_complete_once(message: Any) -> None:
    """A finished paragraph with its buttons, whose final text Discord received exactly once."""
    assert message.content.strip() and not message.content.startswith("Sorry"), message.content
    assert button_ids(message) == [CONTINUE_ID, REGENERATE_ID]
    assert [*message.history, message.content].count(message.content) == 1


def assert_one_reply_per_interaction(rig: DiscordRig, interactions: list[Any], pages: int = 1) -> None:
    """Each interaction was answered once, with `pages` messages, and the bot posted nothing else."""
    for ix in interactions:
        assert len(rig.fake.interaction_responses(ix.id)) == 1
    ids = {ix.id for ix in interactions}
    channels = {ix.channel_id for ix in interactions}
    bot_messages = [m for ch in channels for m in rig.fake.messages_in(ch) if m.author_id == rig.fake.bot.id]
    assert all(m.interaction_id is not None for m in bot_messages), "a message posted outside a reply"
    assert Counter(m.interaction_id for m in bot_messages if m.interaction_id in ids) == Counter(
        {ix_id: pages for ix_id in ids})


async def whole_reply(rig: DiscordRig, ix: Any) -> list[Any]:
    """Every message of an interaction's reply, once the last one shows how the paragraph ended."""
    def ended() -> list[Any] | None:
        messages = [m for m in (ix.original, *ix.followups) if m is not None]
        last = messages[-1] if messages else None
        finished = last is not None and is_final(last) and (last.components or "Sorry" in last.content)
        return messages if finished else None

    return await rig.fake.wait_until(ended, timeout=10)


async def stored_turns(rig: DiscordRig, storage: Storage, first_message: Any) -> list[str]:
    """The stored turns of the story that starts with this message (once it has its thread)."""
    story = await rig.until(lambda: storage.story_for_thread(first_message.id))
    return [turn.text for turn in await storage.turns(story.id)]


async def write(rig: DiscordRig, channel_id: int, user_id: int, topic: str) -> Any:
    return await rig.slash(channel_id, user_id, "write", {"topic": topic})


async def streaming(ix: Any) -> Any:
    """Wait until the reply shows text being written (not the placeholder or a queue place)."""
    waiting = WAITING.split(":")[0]
    return await ix.wait_until_original(lambda m: not m.loading and m.content.endswith(WRITING_MARKER)
                                        and m.content != STARTING and not m.content.startswith(waiting))


async def serves_a_fresh_write(rig: DiscordRig, bot: Any, channel_id: int) -> Any:
    """A new /write after the fault: complete, once, and stored."""
    ix = await write(rig, channel_id, rig.seed.admin.id, "after the storm")
    final = await rig.final(ix)
    assert_complete_once(final)
    assert await stored_turns(rig, bot.service.storage, final) == [paragraph_of(final.content)]
    return final


# -- Discord's REST API failing -----------------------------------------------------------------

async def test_ten_percent_429s_and_5xx_on_every_call_still_end_each_write_complete_once(
        rig: DiscordRig) -> None:
    fake, seed = rig.fake, rig.seed
    channels = [seed.general.id, seed.second.id, fake.add_text_channel(seed.guild.id, "third").id]
    users = [fake.add_user(f"writer-{i}").id for i in range(WRITES_UNDER_FAULTS)]
    for user in users:
        fake.add_member(seed.guild.id, user)
    async with rig.running(step_delay_s=0.01) as bot:
        # 500 and 502 are retried by discord.py after 1 s, 3 s...: rarer than 429s keeps it quick.
        fake.inject_rate(0.1, statuses=(429, 429, 429, 500, 502), seed=3)
        sent = await asyncio.gather(*(write(rig, channels[i % len(channels)], user, f"topic {i}")
                                      for i, user in enumerate(users)))
        finals = [await rig.final(ix, timeout=30) for ix in sent]
        await rig.settle()
        fake.faults.clear()
        injected = Counter(c.status for c in fake.calls if c.injected)
        stored = [await stored_turns(rig, bot.service.storage, final) for final in finals]
        await serves_a_fresh_write(rig, bot, seed.general.id)
        counts = await bot.service.storage.counts()
    assert injected[429] and injected[500] + injected[502], f"the faults did not all happen: {injected}"
    for final in finals:
        assert_complete_once(final)
    assert_one_reply_per_interaction(rig, sent)
    assert stored == [[paragraph_of(final.content)] for final in finals]
    threads = sum(len(fake.threads_of(channel)) for channel in channels)
    assert threads == counts["stories"] == counts["turns"] == WRITES_UNDER_FAULTS + 1


# -- the gateway dropping -----------------------------------------------------------------------

async def test_a_gateway_reconnect_during_writing_resumes_and_loses_no_command(rig: DiscordRig) -> None:
    seed, gateway = rig.seed, rig.fake.gateway
    async with rig.running(step_delay_s=0.03, settings=SLOW) as bot:
        first = await write(rig, seed.general.id, seed.user.id, "a lighthouse keeper")
        await streaming(first)
        await rig.fake.send_reconnect()
        # Sent while the bot reconnects: it arrives on the old link or is replayed on RESUME, once.
        during = await write(rig, seed.second.id, seed.admin.id, "fog on the water")
        finals = [await rig.final(first), await rig.final(during)]
        await rig.fake.wait_until(lambda: RESUME in gateway.received_ops())
        await serves_a_fresh_write(rig, bot, seed.general.id)
    assert gateway.received_ops().count(IDENTIFY) == 1
    for final in finals:
        assert_complete_once(final)
    assert_one_reply_per_interaction(rig, [first, during])


async def test_an_invalid_session_during_writing_identifies_again_and_keeps_serving(rig: DiscordRig) -> None:
    seed, gateway = rig.seed, rig.fake.gateway
    async with rig.running(step_delay_s=0.03, settings=SLOW) as bot:
        first = await write(rig, seed.general.id, seed.user.id, "a lighthouse keeper")
        await streaming(first)
        old_session = gateway.session
        await rig.fake.send_invalid_session(resumable=False)
        final = await rig.final(first)
        assert_complete_once(final)  # before Continue moves its buttons to the next paragraph
        await rig.fake.wait_until(lambda: gateway.received_ops().count(IDENTIFY) == 2)
        await rig.fake.wait_until_ready()
        fresh = await serves_a_fresh_write(rig, bot, seed.second.id)
        # The buttons of a paragraph written before the new session still work.
        await rig.until(lambda: bot.service.storage.story_for_thread(final.id))
        click = await rig.click(seed.general.id, seed.user.id, final.id, CONTINUE_ID)
        await click.wait_for_response()
        continued = await rig.final_in(final.id)
    assert gateway.session is not old_session
    assert_one_reply_per_interaction(rig, [first])
    assert fresh.channel_id == seed.second.id
    assert button_ids(continued) == [CONTINUE_ID, REGENERATE_ID]


# -- the generation worker ----------------------------------------------------------------------

async def three_writers(rig: DiscordRig) -> tuple[list[int], list[int]]:
    """Three channels and three members, so three paragraphs run in one batch."""
    fake, seed = rig.fake, rig.seed
    third = fake.add_text_channel(seed.guild.id, "third").id
    writer = fake.add_user("writer").id
    fake.add_member(seed.guild.id, writer)
    return [seed.general.id, seed.second.id, third], [seed.user.id, seed.admin.id, writer]


@pytest.mark.parametrize("failing", ["decode", "decode_text"])
async def test_a_worker_failure_mid_batch_tells_the_writers_it_concerns_and_the_next_write_works(
        rig: DiscordRig, failing: str) -> None:
    channels, users = await three_writers(rig)
    async with rig.running(step_delay_s=0.03, settings=SLOW) as bot:
        sent = [await write(rig, ch, user, f"topic {i}")
                for i, (ch, user) in enumerate(zip(channels, users, strict=True))]
        for ix in sent:
            await streaming(ix)
        assert rig.scripted is not None
        rig.scripted.fail_next(failing, RuntimeError("CUDA error: an illegal memory access"))
        finals = [await rig.final(ix) for ix in sent]
        await rig.settle()
        counts = await bot.service.storage.counts()
        await serves_a_fresh_write(rig, bot, rig.seed.general.id)
    failed = [f for f in finals if f.content.rsplit("\n\n", 1)[-1].startswith(
        "Sorry: the model failed while writing this paragraph")]
    # A decode step is the whole batch's; turning one row's tokens into text is that row's alone.
    assert len(failed) == (3 if failing == "decode" else 1)
    assert all("try again" in f.content and f.components == [] for f in failed)
    assert all(f.components for f in finals if f not in failed)  # finished normally, buttons and all
    assert counts["turns"] == 3 - len(failed)
    assert_one_reply_per_interaction(rig, sent)


async def test_a_failure_while_admitting_a_burst_fails_only_that_request(tiny_gpt2_model: Any) -> None:
    model = ScriptedModel(tiny_gpt2_model)
    loaded = threading.Event()

    def load(name: str) -> Any:
        loaded.wait(10)  # hold the burst back until all three wait: one admission takes them all
        return model

    params = GenerationParams(model="tiny", strategy="greedy", max_new_tokens=8, min_new_tokens=8)
    async with Engine(load, "tiny", max_batch=8) as engine:
        handles = [engine.submit(GenerationRequest(Prompt(topic), params, fairness_key=topic))
                   for topic in ("bread", "lamp", "storm")]
        model.fail_next("decode_text", RuntimeError("tokenizer exploded"))  # the first one's first step
        loaded.set()
        results = [await asyncio.wait_for(handle.result(), 10) for handle in handles]
    assert [r.kind for r in results] == ["error", "done", "done"]
    assert results[0].failure is Failure.STEP_FAILED and results[0].text == "tokenizer exploded"
    assert failure_message(results[0].failure, results[0].text).startswith(
        "the model failed while writing this paragraph (tokenizer exploded)")


# -- the database and the disk ------------------------------------------------------------------

LOCK_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


@asynccontextmanager
async def locked_by_another_process(database: Path) -> AsyncIterator[None]:
    """Another program holds the database's write lock until the block ends."""
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOCK_HOLDER, str(database),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert await asyncio.wait_for(holder.stdout.readline(), 10) == b"locked\n"
        yield
    finally:
        holder.stdin.write(b"release\n")
        await holder.stdin.drain()
        assert await asyncio.wait_for(holder.wait(), 10) == 0


async def test_a_database_locked_by_another_process_is_reported_and_then_recovered_from(
        rig: DiscordRig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage_database, "BUSY_TIMEOUT_MS", 200)  # wait 0.2 s for the lock, not 2
    seed = rig.seed
    async with rig.running() as bot:
        async with locked_by_another_process(rig.database):
            ix = await write(rig, seed.general.id, seed.user.id, "a lighthouse keeper")
            refused = await rig.final(ix)
            settings = await rig.slash(seed.general.id, seed.admin.id, "settings",
                                       {"name": "temperature", "value": "0.7"}, subcommand="set")
            settings_answer = await rig.final(settings)
        counts = await bot.service.storage.counts()
        await serves_a_fresh_write(rig, bot, seed.general.id)
    paragraph, ending = refused.content.rsplit("\n\n", 1)
    assert paragraph.strip() and ending == (
        f"{NOT_SAVED} (the database is busy: another program is using it): please try again in a moment.")
    assert refused.components == [] and refused.id not in [t.id for t in rig.fake.threads_of(seed.general.id)]
    assert settings_answer.content == "Sorry: the database is busy: another program is using it"
    assert counts["turns"] == counts["stories"] == 0  # no story left without its first paragraph
    assert_one_reply_per_interaction(rig, [ix])


async def fill_the_disk(storage: Storage, full: bool) -> None:
    """To SQLite a full disk is a page it cannot add: cap the file at its size (or lift the cap)."""
    async with storage._lock:
        async with storage._conn.execute("PRAGMA page_count") as cursor:
            (pages,) = await cursor.fetchone()  # type: ignore[misc]
        await storage._conn.execute(f"PRAGMA max_page_count = {pages if full else 2**30}")


async def test_a_full_disk_while_saving_a_turn_says_so_and_the_next_write_is_saved(rig: DiscordRig) -> None:
    # Longer than a database page, so storing the turn needs a new page the full disk lacks.
    prose = "The lamp turned all night and the keeper watched the grey sea. " * 70
    seed = rig.seed
    async with rig.running(prefix=prose) as bot:
        storage = bot.service.storage
        await fill_the_disk(storage, full=True)
        ix = await write(rig, seed.general.id, seed.user.id, "a lighthouse keeper")
        refused = await whole_reply(rig, ix)
        counts = await storage.counts()
        await fill_the_disk(storage, full=False)
        assert rig.scripted is not None
        rig.scripted.prefix = ""  # short paragraphs again: one message each
        await serves_a_fresh_write(rig, bot, seed.second.id)
    assert len(refused) == 3 and all(len(m.content) <= MESSAGE_LIMIT for m in refused)
    assert refused[0].content.startswith(prose[:100])
    assert refused[-1].content.endswith(f"{NOT_SAVED} (the disk is full): please try again in a moment.")
    assert all(m.components == [] for m in refused) and rig.fake.threads_of(seed.general.id) == []
    assert counts["turns"] == counts["stories"] == 0  # no story left without its first paragraph
    assert_one_reply_per_interaction(rig, [ix], pages=3)
