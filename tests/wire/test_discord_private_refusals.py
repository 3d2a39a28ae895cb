"""A refused /write is answered privately and leaves nothing in the channel (issue 11, point 1)."""

from __future__ import annotations

from typing import Any

from bot.engine.fair_queue import QueueFull
from tests.conftest import DiscordRig

EPHEMERAL = 1 << 6


def public_messages(rig: DiscordRig, channel_id: int) -> list[Any]:
    """What every member of the channel can read now."""
    return [m for m in rig.fake.messages_in(channel_id) if not m.ephemeral and not m.deleted]


async def test_a_model_not_offered_is_refused_privately_before_any_public_reply(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with rig.running():
        ix = await rig.slash(general, rig.seed.user.id, "write", {"topic": "tea", "model": "/etc"})
        answer = await rig.final(ix)
    (callback,) = rig.fake.interaction_responses(ix.id)
    assert callback.json["type"] == 4 and callback.json["data"]["flags"] & EPHEMERAL
    assert answer.ephemeral and answer.content.startswith("Sorry: model must be one of")
    assert public_messages(rig, general) == []


async def test_the_cooldown_is_refused_privately(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with rig.running(cooldown_s=60):
        first = await rig.final(await rig.slash(general, rig.seed.user.id, "write", {"topic": "owls"}))
        again = await rig.slash(general, rig.seed.user.id, "write", {"topic": "more owls"})
        answer = await rig.final(again)
    (callback,) = rig.fake.interaction_responses(again.id)
    assert callback.json["type"] == 4 and callback.json["data"]["flags"] & EPHEMERAL
    assert answer.ephemeral and answer.content.startswith("Sorry: slow down a little")
    assert [m.id for m in public_messages(rig, general)] == [first.id]


async def test_a_refusal_after_the_public_defer_removes_the_placeholder(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with rig.running() as bot:
        engine = bot.service.engine

        def full(request: Any) -> Any:  # the queue filled between the checks and the submit
            raise QueueFull(30)

        engine.submit = full
        ix = await rig.slash(general, rig.seed.user.id, "write", {"topic": "a crowded harbour"})
        (reply,) = await ix.wait_for_followups(1)
    (callback,) = rig.fake.interaction_responses(ix.id)
    assert callback.json == {"type": 5}  # public "thinking...", since every check had passed
    deleted = rig.fake.calls_to("DELETE", "/messages/@original")
    assert deleted and deleted[0].ok
    followup = rig.fake.calls_to("POST", "/webhooks/")[-1]
    assert followup.json["flags"] & EPHEMERAL and followup.json["content"].startswith("Sorry: I'm busy")
    assert reply.ephemeral and public_messages(rig, general) == []
