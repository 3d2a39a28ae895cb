"""The service stores a finished paragraph itself: no front has to read the events for it."""

from __future__ import annotations

from bot.service import Place, Service
from tests.conftest import GUILD

CHANNEL, USER = 10, 100
HERE = Place(channel_id=CHANNEL, user_id=USER, guild_id=GUILD)
LONG = {"max_new_tokens": 40, "min_new_tokens": 40}


async def stored_texts(service: Service) -> list[str]:
    story = await service.storage.latest_story(CHANNEL)
    return [] if story is None else [turn.text for turn in await service.storage.turns(story.id)]


async def test_a_paragraph_is_stored_when_the_front_stops_reading_mid_stream(service: Service) -> None:
    generation = await service.write(HERE, "a lighthouse keeper", LONG)
    async for event in generation.events():
        if event.kind == "text":
            break  # the front goes away (its message was deleted, say) after the first piece
    final = await generation.result()
    assert final.kind == "done" and final.text
    assert await stored_texts(service) == [final.text]
    assert generation.turn is not None and generation.turn.text == final.text


async def test_a_paragraph_nobody_reads_is_stored_too(service: Service) -> None:
    generation = await service.write(HERE, "bread", LONG)
    final = await generation.result()
    assert final.kind == "done"
    assert await stored_texts(service) == [final.text]


async def test_done_reaches_the_front_only_after_the_paragraph_is_stored(service: Service) -> None:
    generation = await service.write(HERE, "a lamp", LONG)
    async for event in generation.events():
        if event.kind == "done":
            assert await stored_texts(service) == [event.text]


async def test_shutting_down_waits_until_finished_paragraphs_are_stored(service: Service) -> None:
    generation = await service.write(HERE, "the sea", LONG)
    async for event in generation.events():
        if event.kind == "text":  # running, not waiting: a shutdown lets it finish
            break
    await service.shut_down(grace_s=30)
    final = await generation.result()
    assert final.kind == "done"
    assert await stored_texts(service) == [final.text]
