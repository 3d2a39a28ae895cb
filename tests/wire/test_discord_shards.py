"""Two gateway shards in one process (AutoShardedBot with SHARD_COUNT=2) against the fake
Discord: each shard identifies with its pair, sees only its own guilds, and /write is answered
in a guild on each shard."""

from __future__ import annotations

import dataclasses

from bot.discord.client import ShardedStoryBot
from bot.discord.stream import StreamTiming
from testing.fakediscord import FAST_CLIENT_OPTIONS, running_client
from testing.fakediscord.gateway import IDENTIFY
from testing.fakediscord.world import shard_of
from tests.conftest import DISCORD_TEST_SETTINGS, DISCORD_TEST_TIMING, DiscordRig, paragraph_of


class FastShardedStoryBot(ShardedStoryBot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None  # discord.py waits 5 s between shards' IDENTIFYs; tests need not


async def test_two_shards_each_serve_their_own_guilds(rig: DiscordRig) -> None:
    fake, seed = rig.fake, rig.seed
    fake.world.shard_count = 2  # what GET /gateway/bot recommends
    home_shard = shard_of(seed.guild.id, 2)
    other = fake.world.add_guild("Second Guild", shard=(1 - home_shard, 2))
    tales = fake.world.add_text_channel(other.id, "tales")
    fake.add_member(other.id, seed.user.id)
    async with rig.services() as (service, config):
        await service.storage.update_settings("guild", other.id, DISCORD_TEST_SETTINGS)
        sharded = dataclasses.replace(config, dev_guild_id=None, shard_count=2)  # global commands
        bot = FastShardedStoryBot(service, sharded, timing=StreamTiming(**DISCORD_TEST_TIMING), **FAST_CLIENT_OPTIONS)
        async with running_client(bot, fake.token):
            await fake.wait_until(lambda: fake.gateway.shards_ready(2))
            here = await rig.slash(seed.general.id, seed.user.id, "write", {"topic": "a lighthouse keeper"})
            there = await fake.slash(other.id, tales.id, seed.user.id, "write", {"topic": "a night train"})
            first, second = await rig.final(here), await rig.final(there)
            guild_shards = {guild.id: guild.shard_id for guild in bot.guilds}
            await rig.settle()
    identified = sorted(f.d["shard"] for f in fake.gateway.frames if f.direction == "in" and f.op == IDENTIFY)
    ready = {f.d["shard"][0]: [g["id"] for g in f.d["guilds"]] for f in fake.gateway.frames
             if f.direction == "out" and f.t == "READY"}
    assert identified == [[0, 2], [1, 2]]
    assert ready == {home_shard: [str(seed.guild.id)], 1 - home_shard: [str(other.id)]}
    assert guild_shards == {seed.guild.id: home_shard, other.id: 1 - home_shard}
    assert paragraph_of(first.content).strip() and paragraph_of(second.content).strip()
    assert "Sorry" not in first.content + second.content
