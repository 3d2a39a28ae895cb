"""The bot's wiring: run_discord, start-up that survives a broken cog, the error path, the intent fallback."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from typing import Any

import discord
import pytest

import bot.discord.client as discord_bot
from bot.discord.client import StoryBot, run_discord
from tests.conftest import DiscordRig


async def test_run_discord_logs_in_syncs_and_serves_until_cancelled(rig: DiscordRig) -> None:
    async with rig.services() as (service, config):
        task = asyncio.create_task(run_discord(config, service))
        await rig.fake.wait_until(lambda: rig.fake.world.commands.get(rig.seed.guild.id))
        await rig.fake.wait_until_ready()
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "stats")
        stats = await ix.wait_until_original(lambda m: bool(m.content))
        task.cancel()  # what Ctrl-C does to the process
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert "queue: 0 waiting" in stats.content


async def test_a_refused_token_is_reported_without_being_logged(
        rig: DiscordRig, caplog: pytest.LogCaptureFixture) -> None:
    wrong = "W" * 59 + "x"
    async with rig.services() as (service, config):
        with caplog.at_level(logging.DEBUG):
            await run_discord(dataclasses.replace(config, discord_token=wrong), service)
    assert "Discord refused the bot token" in caplog.text and wrong not in caplog.text


async def test_without_the_content_intent_the_bot_runs_on_without_it(
        rig: DiscordRig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    tries: list[bool] = []

    async def start(self: StoryBot, token: str, *, reconnect: bool = True) -> None:
        tries.append(self.intents.message_content)
        if self.intents.message_content:  # what Discord answers (close code 4014) when not enabled
            raise discord.PrivilegedIntentsRequired(None)

    monkeypatch.setattr(StoryBot, "start", start)
    async with rig.services() as (service, config):
        await run_discord(config, service)
    assert tries == [True, False] and "Message Content intent is not enabled" in caplog.text


async def test_a_cog_that_fails_to_load_does_not_stop_the_others(
        rig: DiscordRig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(discord_bot, "EXTENSIONS", ("cogs.not_there", *discord_bot.EXTENSIONS))
    async with rig.running():
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "stats")
        await ix.wait_until_original(lambda m: bool(m.content))
    assert "could not load cogs.not_there" in caplog.text


async def test_an_unexpected_error_gets_an_apology_with_an_id_and_a_logged_traceback(
        rig: DiscordRig, caplog: pytest.LogCaptureFixture) -> None:
    async def broken(place: Any) -> Any:
        raise RuntimeError("database on fire")

    async with rig.running() as bot:
        bot.service.effective_settings = broken
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "settings", subcommand="show")
        reply = await ix.wait_until_original(lambda m: bool(m.content))
    found = re.fullmatch(r"Sorry, something went wrong on my side \(error id (\w+)\)\.", reply.content)
    assert found and reply.ephemeral
    (record,) = [r for r in caplog.records if found.group(1) in r.getMessage()]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert "database on fire" not in reply.content
