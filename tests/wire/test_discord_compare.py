"""/compare over the wire: every model's paragraph on one topic, one message each, nothing stored."""

from __future__ import annotations

import time

from bot.limits import DEFER_DEADLINE_S
from bot.service import COMPARE_MODELS
from tests.conftest import DiscordRig, is_final


async def test_compare_posts_one_titled_paragraph_per_model_and_stores_nothing(rig: DiscordRig) -> None:
    """The built-in models, then the channel's own (here the rig's tiny model, as a fine-tuned
    folder the owner offers would be), one message each."""
    general = rig.seed.general.id
    names = [*COMPARE_MODELS, rig.model_name]
    async with rig.running() as bot:
        asked = time.monotonic()
        ix = await rig.slash(general, rig.seed.user.id, "compare", {"topic": "a lighthouse keeper"})
        first = await rig.final(ix)
        await rig.fake.wait_until(lambda: len(ix.followups) == len(names) - 1
                                  and all(is_final(m) for m in ix.followups))
        counts = await bot.service.storage.counts()
    (callback,) = rig.fake.interaction_responses(ix.id)
    assert callback.json == {"type": 5} and callback.time - asked < DEFER_DEADLINE_S
    messages = [first, *ix.followups]
    # The rig only has the tiny model: each built-in model falls back to it and says so.
    assert [m.content.split("\n", 1)[0] for m in messages] == [f"**{name}**" for name in names]
    assert all("not available" in m.content and m.content.strip().count("\n") >= 2 for m in messages[:-1])
    assert "not available" not in messages[-1].content and len(messages[-1].content.split("\n")) >= 2
    assert all(not m.components for m in messages)  # no story: nothing to continue
    assert counts["stories"] == 0 and counts["turns"] == 0


async def test_compare_with_an_empty_topic_is_refused_clearly(rig: DiscordRig) -> None:
    async with rig.running():
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "compare", {"topic": "   "})
        final = await rig.private_answer(ix)
    assert "give me a topic" in final.content
