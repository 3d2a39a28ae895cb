"""/stats counts Stop apart from failures and tells members about their own requests (issue 11,
point 7)."""

from __future__ import annotations

from typing import Any

from bot.discord.views import STOP_ID
from bot.limits import WRITING_MARKER
from tests.conftest import DISCORD_TEST_SETTINGS, DiscordRig

LONG = {**DISCORD_TEST_SETTINGS, "max_new_tokens": 200}


async def stats_for(rig: DiscordRig, user_id: int) -> str:
    ix = await rig.slash(rig.seed.second.id, user_id, "stats")
    reply = await ix.wait_until_original(lambda m: bool(m.content))
    (callback,) = rig.fake.interaction_responses(ix.id)
    assert callback.json["data"]["flags"] & (1 << 6) and reply.ephemeral
    return str(callback.json["data"]["content"])


async def test_stats_shows_my_requests_and_counts_a_stop_apart_from_failures(rig: DiscordRig) -> None:
    seed = rig.seed
    async with rig.running(max_batch=1, step_delay_s=0.05, settings=LONG):
        writing = await rig.slash(seed.general.id, seed.user.id, "write", {"topic": "a long road"})
        shown: Any = await writing.wait_until_original(lambda m: m.content.endswith(WRITING_MARKER))
        waiting = await rig.slash(seed.second.id, seed.admin.id, "write", {"topic": "a short wait", "length": 8})
        await waiting.wait_until_original(lambda m: m.content.startswith("⏳"))
        writer_sees = await stats_for(rig, seed.user.id)
        waiter_sees = await stats_for(rig, seed.admin.id)
        await rig.click(seed.general.id, seed.user.id, shown.id, STOP_ID)
        await rig.final(writing)
        await rig.final(waiting)
        after = await stats_for(rig, seed.user.id)
    assert "your request: being written, " in writer_sees and " tokens so far" in writer_sees
    assert "your request: waiting, number 1 in line" in waiter_sees
    assert "1 stopped, 0 failed" in after and "your request" not in after
    # Read from the database: nothing stored while both were being written; then the stopped
    # paragraph and the finished one, each the first of its story.
    assert "stored: 0 stories, 0 paragraphs" in writer_sees
    assert "stored: 2 stories, 2 paragraphs" in after
