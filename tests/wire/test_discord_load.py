"""Fifty /write at once from ten channels: every one deferred in time, answered once, none lost."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot.discord.views import CONTINUE_ID, REGENERATE_ID
from bot.limits import DEFER_DEADLINE_S
from testing.buttons import button_ids
from tests.conftest import DISCORD_TEST_SETTINGS, DiscordRig

USERS = 50
CHANNELS = 10
EPHEMERAL = 1 << 6
SHORT = {**DISCORD_TEST_SETTINGS, "max_new_tokens": 8}



async def test_fifty_concurrent_writes_are_each_deferred_and_answered_exactly_once(rig: DiscordRig) -> None:
    fake, seed = rig.fake, rig.seed
    channels = [seed.general.id, seed.second.id]
    channels += [fake.add_text_channel(seed.guild.id, f"room-{i}").id for i in range(CHANNELS - 2)]
    users = [fake.add_user(f"writer-{i}").id for i in range(USERS)]
    for user in users:
        fake.add_member(seed.guild.id, user)
    # Steps slow enough that 50 arrivals overrun 8 running + 16 waiting: some must hear "busy".
    async with rig.running(max_batch=8, max_waiting=16, step_delay_s=0.1, settings=SHORT) as bot:

        async def write(index: int) -> tuple[float, Any]:
            asked = time.monotonic()
            ix = await rig.slash(channels[index % CHANNELS], users[index], "write", {"topic": f"topic {index}"})
            return asked, ix

        sent = await asyncio.gather(*(write(i) for i in range(USERS)))
        finals = [await rig.outcome(ix, timeout=30) for _, ix in sent]
        await rig.settle()
        stories = [await bot.service.storage.latest_story(ch) for ch in channels]
        counts = await bot.service.storage.counts()

    for asked, ix in sent:  # a public defer, or a private refusal, both in time
        (callback,) = fake.interaction_responses(ix.id)
        public = callback.json == {"type": 5}  # a refusal after it deletes it (the queue filled meanwhile)
        assert public or (callback.json["type"] == 4 and callback.json["data"]["flags"] & EPHEMERAL)
        assert callback.time - asked < DEFER_DEADLINE_S
    written = [m for m in finals if button_ids(m) == [CONTINUE_ID, REGENERATE_ID]]
    busy = [m for m in finals if m.content.startswith("Sorry: I'm busy") and m.ephemeral]
    assert len(written) + len(busy) == USERS and written and busy
    assert all(m.content.strip() and not m.content.startswith("Sorry") for m in written)
    # One message per interaction, nothing doubled, and a stored story and a thread per paragraph.
    bot_messages = [m for ch in channels for m in fake.messages_in(ch) if m.author_id == fake.bot.id
                    and not m.deleted]
    assert sorted(m.id for m in bot_messages) == sorted(m.id for m in finals)
    assert sum(len(fake.threads_of(ch)) for ch in channels) == len(written) == counts["stories"]
    assert all(story is not None for story in stories)  # no channel starved
