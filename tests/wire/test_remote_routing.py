"""Where remote requests go: the fair queue when the server is the bottleneck, the replicas,
and the default model when the owner chose it for a model whose servers are down."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.engine.fair_queue import UserBusy
from bot.engine.remote.breaker import CircuitBreaker
from bot.engine.worker import Engine
from bot.generation import worded
from testing.fakeopenai import FakeOpenAI
from tests.remote_helpers import PLAIN, REMOTE, at, remote_engine, request


def topic_of(body: dict[str, Any]) -> str:
    return body["messages"][1]["content"].removeprefix("Write a paragraph about ").rstrip(".")


async def test_with_a_slow_server_channels_take_turns_and_only_n_are_in_flight() -> None:
    async with FakeOpenAI(chunk_delay_s=0.01) as server, \
            remote_engine(at(REMOTE, server.url, max_in_flight=1)) as engine:
        in_flight: list[int] = []

        async def sample() -> None:
            while True:
                in_flight.append(engine.stats().endpoints[0].in_flight)
                await asyncio.sleep(0.005)

        sampler = asyncio.create_task(sample())
        busy = [engine.submit(request(f"a{n}", key="busy-channel")) for n in range(4)]
        await asyncio.sleep(0)  # the dispatcher takes the first one
        quiet = engine.submit(request("b0", key="quiet-channel"))
        position = engine.progress(quiet)
        results = await asyncio.gather(*(h.result() for h in [*busy, quiet]))
        sampler.cancel()
    order = [topic_of(r.body) for r in server.completions()]
    assert all(r.kind == "done" for r in results) and position.state == "waiting"
    # First come, first served would give a0 a1 a2 a3 b0: the quiet channel waits behind one, not three.
    assert order == ["a0", "a1", "b0", "a2", "a3"]
    assert max(in_flight) == 1


async def test_per_user_limits_and_the_queue_bound_hold_for_remote_models() -> None:
    async with FakeOpenAI(chunk_delay_s=0.01) as server, \
            remote_engine(at(REMOTE, server.url, max_in_flight=1), max_per_user=2) as engine:
        engine.submit(request(user=5))
        engine.submit(request(user=5))
        try:
            engine.submit(request(user=5))
            refused = False
        except UserBusy:
            refused = True
        engine.cancel(engine.submit(request(user=6)))
    assert refused


async def test_a_story_stays_on_its_replica_and_moves_when_that_one_is_down() -> None:
    async with FakeOpenAI() as one, FakeOpenAI() as two, \
            remote_engine(at(REMOTE, one.url, two.url), breaker=None) as engine:
        for endpoints in engine.remote.endpoints.values():
            for endpoint in endpoints:
                endpoint.breaker = CircuitBreaker(failures_to_open=1, cooldown_s=60)
        for _ in range(3):
            await engine.submit(request(affinity="story-42")).result()
        home, other = (one, two) if one.completions() else (two, one)
        assert len(home.completions()) == 3 and not other.completions()
        home.down = True
        moved = await engine.submit(request(affinity="story-42")).result()
        spread = [await engine.submit(request(affinity=f"story-{n}")).result() for n in range(12)]
    assert moved.kind == "done" and len(other.completions()) == 1 + 12, "the down replica got new stories"
    assert all(r.kind == "done" for r in spread)


async def test_stories_spread_across_healthy_replicas() -> None:
    async with FakeOpenAI() as one, FakeOpenAI() as two, remote_engine(at(REMOTE, one.url, two.url)) as engine:
        await asyncio.gather(*(engine.submit(request(affinity=f"story-{n}")).result() for n in range(16)))
    assert one.completions() and two.completions()
    assert len(one.completions()) + len(two.completions()) == 16


async def test_when_the_owner_chose_so_a_down_model_falls_back_to_the_default(
        tiny_gpt2_model: Any, tiny_gpt2_dir: Path) -> None:
    name = str(tiny_gpt2_dir)
    async with FakeOpenAI() as server:
        server.down = True
        engine = Engine(lambda model: tiny_gpt2_model, name, remote=[at(REMOTE, server.url, when_down="default")])
        async with engine:
            engine.preload(name)
            handle = engine.submit(request(params=PLAIN.replace(max_new_tokens=8)))
            events = [e async for e in handle.events()]
    notes = [worded(e).text for e in events if e.kind == "started" and e.fallback]
    assert events[-1].kind == "done" and handle.model_used == name
    assert notes and notes[0].startswith("model fake is not available")
