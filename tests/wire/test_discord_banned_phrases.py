"""Banned phrases over the wire: a story thread with Continue clicks and a /continue direction
never shows a banned phrase, in any message or edit, and the direction reaches the model last."""

from __future__ import annotations

import re
from typing import Any

from bot.discord.views import CONTINUE_ID
from models.prompts import direction_note
from tests.conftest import DISCORD_TEST_SETTINGS, DiscordRig, paragraph_of

DIRECTION = "the tide turns"


async def write_a_story(rig: DiscordRig, bot: Any) -> list[str]:
    """/write, two Continue clicks and a /continue with a direction; the paragraphs shown."""
    first = await rig.final(await rig.slash(rig.seed.general.id, rig.seed.user.id, "write",
                                            {"topic": "a lighthouse keeper"}))
    await rig.until(lambda: bot.service.storage.story_for_thread(first.id))  # its thread is open
    shown = [paragraph_of(first.content)]
    channel, latest = rig.seed.general.id, first  # the opening's buttons are in the channel
    for _ in range(2):
        await rig.click(channel, rig.seed.admin.id, latest.id, CONTINUE_ID)
        latest = await rig.final_in(first.id, after=0 if latest is first else latest.id, timeout=30)
        channel = first.id  # the story's thread: its id is the opening's
        shown.append(paragraph_of(latest.content))
    await rig.final(await rig.slash(first.id, rig.seed.user.id, "continue", {"direction": DIRECTION}))
    return shown


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]{4,}", text.lower())


async def test_a_banned_word_never_appears_in_any_message_or_edit_of_a_story(rig: DiscordRig) -> None:
    settings = dict(DISCORD_TEST_SETTINGS)
    async with rig.running(settings=settings) as bot:
        free = await write_a_story(rig, bot)
    # The word the tiny model wrote most in its continuations: it would write it again.
    written = [w for paragraph in free[1:] for w in words(paragraph)]
    banned = max(set(written), key=written.count)
    rig.fake.calls.clear()
    async with rig.running(settings={**settings, "banned_phrases": [banned]}) as bot:
        await write_a_story(rig, bot)
        prompts = rig.scripted.prompts if rig.scripted else []
    texts = [rig.message_of(call).get("content") or "" for call in rig.payloads()]
    assert texts and not [t for t in texts if re.search(rf"\b{banned}\b", t, re.IGNORECASE)], banned
    # The direction is the last thing the model reads (a plain LM: a note after the story).
    directed = [p for p in prompts if p.direction == DIRECTION]
    assert directed and rig.model.decode_text(rig.model.encode_prompt(directed[0], 24)).endswith(
        direction_note(DIRECTION))
