""""Waiting in line" only when a request waits behind others; "loading the model" while it loads
(issue 11, point 3)."""

from __future__ import annotations

from bot.discord.stream import LOADING, WAITING
from tests.conftest import DiscordRig

IN_LINE = WAITING.split(":")[0]


def contents_sent(rig: DiscordRig) -> list[str]:
    return [rig.message_of(c).get("content") or "" for c in rig.payloads()]


async def test_an_idle_bot_and_two_requests_at_once_never_say_waiting(rig: DiscordRig) -> None:
    seed = rig.seed
    async with rig.running(step_delay_s=0.02):
        first = await rig.slash(seed.general.id, seed.user.id, "write", {"topic": "a quiet harbour"})
        second = await rig.slash(seed.second.id, seed.admin.id, "write", {"topic": "a busy market"})
        finals = [await rig.final(ix) for ix in (first, second)]
    sent = contents_sent(rig)
    assert all(f.content.strip() for f in finals)
    assert not [text for text in sent if text.startswith(IN_LINE)], "a request that never waited said so"


async def test_while_the_model_loads_the_message_says_so(rig: DiscordRig) -> None:
    async with rig.running(load_delay_s=2.0):
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "write", {"topic": "a slow start"})
        await ix.wait_until_original(lambda m: m.content == LOADING)
        final = await rig.final(ix)
    sent = contents_sent(rig)
    assert final.content.strip() and LOADING in final.history
    assert not [text for text in sent if text.startswith(IN_LINE)]
