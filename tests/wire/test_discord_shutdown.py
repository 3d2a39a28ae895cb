"""Shutting down over the wire: new commands are refused, waiting users are told, running
paragraphs finish within the grace or are cut with a message, and the bot logs out."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from bot.discord.client import run_discord
from bot.discord.stream import WAITING
from bot.discord.views import CONTINUE_ID, REGENERATE_ID
from bot.limits import WRITING_MARKER
from bot.messages import SHUTTING_DOWN
from testing.buttons import button_ids
from tests.conftest import DISCORD_TEST_SETTINGS, DiscordRig

TOLD = f"Sorry: {SHUTTING_DOWN}"
# 64 tokens at 50 ms a step: a paragraph takes seconds, time enough to shut down in the middle.
SLOW = {"step_delay_s": 0.05, "max_batch": 1}
LONG = {**DISCORD_TEST_SETTINGS, "max_new_tokens": 64, "min_new_tokens": 64}



def writing(message: Any) -> bool:
    return message.content.endswith(WRITING_MARKER) and len(message.content) > len(WRITING_MARKER)


def waiting(message: Any) -> bool:
    return message.content.startswith(WAITING.split(":")[0])


async def one_running_one_waiting(rig: DiscordRig) -> tuple[Any, Any]:
    """A /write that is being written (max_batch 1) and a second one waiting in line behind it."""
    seed = rig.seed
    running = await rig.slash(seed.general.id, seed.user.id, "write", {"topic": "a lighthouse keeper"})
    await running.wait_until_original(writing)
    queued = await rig.slash(seed.second.id, seed.admin.id, "write", {"topic": "the history of bread"})
    await queued.wait_until_original(waiting)
    return running, queued


async def test_with_no_grace_the_running_paragraph_is_cut_and_the_waiting_user_told(rig: DiscordRig) -> None:
    async with rig.running(settings=LONG, **SLOW) as bot:
        running, queued = await one_running_one_waiting(rig)
        await bot.shut_down(grace_s=0)
        assert bot.is_closed()
        counts = await bot.service.storage.counts()
    cut, told = running.original, queued.original
    text, _, ending = cut.content.rpartition("\n\n")
    assert text.strip() and ending == TOLD and button_ids(cut) == []
    assert told.content == TOLD and button_ids(told) == []
    assert counts["turns"] == 0  # a cut paragraph is not part of any story


async def test_within_the_grace_the_running_paragraph_finishes_and_is_stored(rig: DiscordRig) -> None:
    async with rig.running(settings=LONG, **SLOW) as bot:
        running, queued = await one_running_one_waiting(rig)
        shutting = asyncio.create_task(bot.shut_down(grace_s=30))
        told = await queued.wait_until_original(lambda m: m.content == TOLD)
        still_writing = writing(running.original)  # the waiting user is told at once
        await asyncio.wait_for(shutting, 30)
        counts = await bot.service.storage.counts()
    assert told.content == TOLD and still_writing
    finished = running.original
    assert button_ids(finished) == [CONTINUE_ID, REGENERATE_ID] and SHUTTING_DOWN not in finished.content
    assert counts["turns"] == 1


async def test_commands_sent_while_shutting_down_are_refused_politely(rig: DiscordRig) -> None:
    seed = rig.seed
    async with rig.running(settings=LONG, **SLOW) as bot:
        await one_running_one_waiting(rig)
        shutting = asyncio.create_task(bot.shut_down(grace_s=30))
        await rig.fake.wait_until(lambda: not bot.service.accepting)
        late_write = await rig.slash(seed.general.id, seed.admin.id, "write", {"topic": "too late"})
        late_set = await rig.slash(seed.general.id, seed.admin.id, "settings",
                                   {"name": "temperature", "value": "0.9"}, subcommand="set")
        replies = [await ix.wait_until_original(lambda m: bool(m.content)) for ix in (late_write, late_set)]
        await asyncio.wait_for(shutting, 30)
        settings = await bot.service.storage.get_settings("channel", seed.general.id)
    assert [(r.content, r.ephemeral) for r in replies] == [(TOLD, True)] * 2
    assert settings == {}


async def test_run_discord_shuts_down_gently_when_told_to_stop(rig: DiscordRig) -> None:
    async with rig.services(settings=LONG, **SLOW) as (service, config):
        stop = asyncio.Event()
        config = dataclasses.replace(config, shutdown_grace_s=30)
        task = asyncio.create_task(run_discord(config, service, stop))
        await rig.fake.wait_until(lambda: rig.fake.world.commands.get(rig.seed.guild.id))
        await rig.fake.wait_until_ready()
        running, queued = await one_running_one_waiting(rig)
        stop.set()  # what SIGTERM does (bot.shutdown.stop_on_signals)
        await asyncio.wait_for(task, 30)
    assert queued.original.content == TOLD
    assert button_ids(running.original) == [CONTINUE_ID, REGENERATE_ID]  # finished within the grace
    assert not service.accepting
