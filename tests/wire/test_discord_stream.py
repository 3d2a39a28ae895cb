"""The stream writer over the wire, fed scripted engine events: pages, retries, endings, versions."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from bot.discord.pages import FENCE
from bot.discord.views import CONTINUE_ID, REGENERATE_ID
from bot.engine.requests import Event, Progress
from bot.limits import MESSAGE_LIMIT
from bot.paragraph_facts import ParagraphFacts
from bot.service import Place
from models.params import GenerationParams
from testing.buttons import button_ids
from tests.conftest import DiscordRig


class ScriptedGeneration:
    """Plays engine events like a service Generation: the turn exists once "done" is yielded."""

    def __init__(self, script: list[Event], gap_s: float = 0.0, variants: int = 1,
                 fail: Exception | None = None) -> None:
        self.script, self.gap_s, self.fail = script, gap_s, fail
        self.params = GenerationParams(variants=variants)
        self.place = Place(channel_id=0, user_id=1)
        self.turn: Any = None
        self.story: Any = None
        self.title = ""
        self.facts: Any = None
        self.variant_facts: tuple[Any, ...] = ()

    async def events(self) -> AsyncIterator[Event]:
        for event in self.script:
            await asyncio.sleep(self.gap_s)
            if event.kind == "done":
                self.turn, self.story = SimpleNamespace(id=1), SimpleNamespace(id=1)
            yield event
        if self.fail is not None:
            raise self.fail

    def position(self) -> int | None:
        return None

    def progress(self) -> Progress:
        return Progress("starting")

    def cancel(self) -> None:
        pass


def written(text: str, piece: int = 80) -> list[Event]:
    pieces = [Event("text", text[i:i + piece]) for i in range(0, len(text), piece)]
    return [Event("started"), *pieces, Event("variant_done", text), Event("done", text)]


async def stream_into_general(rig: DiscordRig, bot: Any, generation: ScriptedGeneration) -> list[Any]:
    channel = bot.get_channel(rig.seed.general.id)
    ids = await bot.stream(generation, bot.channel_target(channel, channel.id))
    return [rig.fake.world.messages[i] for i in ids]



async def test_a_long_paragraph_rolls_into_new_messages_without_breaking_code(rig: DiscordRig) -> None:
    prose = "The lamp turned all night and the keeper watched the sea. " * 30
    code = "```python\n" + "\n".join(f"light({i})  # sweep the water" for i in range(70)) + "\n```"
    text = f"{prose}\n\n{code}\n\n{prose}"
    async with rig.running() as bot:
        messages = await stream_into_general(rig, bot, ScriptedGeneration(written(text)))
    assert len(messages) >= 3 and messages == rig.fake.messages_in(rig.seed.general.id)
    assert all(len(m.content) <= MESSAGE_LIMIT and m.content.count(FENCE) % 2 == 0 for m in messages)
    assert [button_ids(m) for m in messages] == [[]] * (len(messages) - 1) + [[CONTINUE_ID, REGENERATE_ID]]
    shown = " ".join(m.content for m in messages).replace(FENCE + "python", " ").replace(FENCE, " ")
    assert shown.split() == text.replace(FENCE + "python", " ").replace(FENCE, " ").split()


async def test_a_final_edit_that_discord_py_gave_up_on_is_retried_until_it_lands(rig: DiscordRig) -> None:
    script = [Event("started"), Event("text", "Hello world."), Event("variant_done", "Hello world."),
              Event("done", "Hello world.")]
    general = rig.seed.general.id
    async with rig.running() as bot:
        # discord.py raises a 503 on a channel route at once: the stream itself must try again.
        rig.fake.inject("PATCH", rf"^/channels/{general}/messages/", status=503, times=2)
        (message,) = await stream_into_general(rig, bot, ScriptedGeneration(script, gap_s=0.02))
    edits = rig.fake.calls_to("PATCH", f"/channels/{general}/messages/{message.id}")
    assert [c.status for c in edits] == [503, 503, 200]
    assert message.content == "Hello world." and [*message.history, message.content].count("Hello world.") == 1


async def test_an_engine_error_ends_the_message_with_the_reason_and_no_buttons(rig: DiscordRig) -> None:
    script = [Event("started"), Event("text", "Half a"), Event("error", "the model ran out of memory")]
    async with rig.running() as bot:
        (message,) = await stream_into_general(rig, bot, ScriptedGeneration(script))
    assert message.content == "Half a\n\nSorry: the model ran out of memory" and message.components == []


async def test_an_unexpected_failure_ends_with_an_apology_and_a_logged_error_id(
        rig: DiscordRig, caplog: pytest.LogCaptureFixture) -> None:
    script = [Event("started"), Event("text", "Almost")]
    with caplog.at_level(logging.ERROR, logger="bot.discord.stream"):
        async with rig.running() as bot:
            generation = ScriptedGeneration(script, fail=RuntimeError("disk full"))
            (message,) = await stream_into_general(rig, bot, generation)
    found = re.search(r"Sorry, something went wrong on my side \(error id (\w+)\)\.$", message.content)
    assert found and message.content.startswith("Almost")
    (record,) = [r for r in caplog.records if found.group(1) in r.getMessage()]
    assert record.exc_info is not None and "disk full" not in message.content


async def test_versions_are_shown_one_after_another(rig: DiscordRig) -> None:
    script = [Event("started"), Event("text", "A", variant=0), Event("text", "B", variant=1),
              Event("variant_done", "B", variant=1), Event("text", " more", variant=0),
              Event("variant_done", "A more", variant=0), Event("done", "A more")]
    async with rig.running() as bot:
        generation = ScriptedGeneration(script, variants=2)
        generation.variant_facts = (ParagraphFacts("m", "sample", seed=1), ParagraphFacts("m", "sample", seed=2))
        (message,) = await stream_into_general(rig, bot, generation)
    # Each version carries how it was written: its own seed writes it again.
    assert message.content == ("**Version 1**\nA more\n\n-# m · sample · seed 1\n\n"
                               "**Version 2**\nB\n\n-# m · sample · seed 2")
