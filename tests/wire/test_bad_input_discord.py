"""Bad input over the wire: what a hostile client can put in /write and /settings.

The real bot against the fake Discord: options sent as they are, past the client's own checks,
get a paragraph or a clear, private refusal; nothing is logged as a failure.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest

from bot.limits import MESSAGE_LIMIT
from tests.conftest import DiscordRig


async def final_reply(rig: DiscordRig, options: list[dict[str, Any]] | dict[str, Any]) -> Any:
    """/write in #general with options sent as they are (a list skips the client's own checks)."""
    return await rig.final(await rig.slash(rig.seed.general.id, rig.seed.user.id, "write", options))


def raw_topic(text: str) -> list[dict[str, Any]]:
    return [{"name": "topic", "type": 3, "value": text}]


async def test_hostile_topics_over_the_wire_get_a_paragraph_or_a_clear_reply(
        rig: DiscordRig, caplog: pytest.LogCaptureFixture) -> None:
    admin = rig.seed.admin.id
    fenced = f"```py\n@everyone <@{admin}> \u202eevil\u202c \u200bzero\u200b width\n```"
    async with rig.running():
        too_long = await final_reply(rig, raw_topic(("@everyone ```" * 500)[:6000]))  # 6,000 characters
        invisible = await final_reply(rig, raw_topic("\u200b\u202e\u2060\x00 \n"))
        mentions = await final_reply(rig, raw_topic(f"<@{admin}> @everyone <#{rig.seed.general.id}>"))
        written = await final_reply(rig, {"topic": fenced})
        (thread,) = await rig.fake.wait_until(lambda: rig.fake.threads_of(rig.seed.general.id))
    assert too_long.content == "Sorry: the topic is too long (6000 characters; at most 300)"
    assert invisible.content == "Sorry: give me a topic, for example: /write topic: a lighthouse keeper"
    assert mentions.content == ("Sorry: a topic needs words besides mentions, for example: "
                                "/write topic: a lighthouse keeper") and mentions.ephemeral
    assert written.content.strip() and thread.name == "py evil zero width"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "an input was logged as a failure"


async def test_hostile_numbers_and_choices_over_the_wire_get_clear_replies(rig: DiscordRig) -> None:
    topic = raw_topic("owls")
    async with rig.running():
        huge = await final_reply(rig, [*topic, {"name": "length", "type": 4, "value": 10**30}])
        nan = await final_reply(rig, [*topic, {"name": "length", "type": 4, "value": math.nan}])
        odd = await final_reply(rig, [*topic, {"name": "strategy", "type": 3, "value": "\u202ebeam"}])
        ix = await rig.slash(rig.seed.general.id, rig.seed.admin.id, "settings", [
            {"name": "name", "type": 3, "value": "top_k"}, {"name": "value", "type": 3, "value": "5"},
            {"name": "scope", "type": 3, "value": "everywhere " * 500}], subcommand="set")
        scope = await ix.wait_until_original(lambda m: bool(m.content))
    assert huge.content == "Sorry: max_new_tokens must be in 8 to 512, got 1e+30"
    assert nan.content == "Sorry: max_new_tokens must be a number from 8 to 512, got nan"
    assert odd.content == "Sorry: strategy must be one of greedy, beam, top_k, top_p, sample, got '\\u202ebeam'"
    assert scope.ephemeral and scope.content.startswith("Sorry: scope must be server, channel or thread, got ")
    assert len(scope.content) < MESSAGE_LIMIT // 10
