"""Operations over the wire: /metrics and /healthz of a running bot, and its JSON logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.ops.health import HealthChecks, database_check, discord_check, model_check
from bot.ops.logs import make_handler
from bot.ops.metrics import BotMetrics
from bot.ops.server import ops_server
from tests.conftest import DiscordRig

REALISTIC_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GxYzAb.s3cr3t-t0ken-value-ABCDEFGHIJKLMNOPQRSTUVW"


@asynccontextmanager
async def ops_of(bot: Any, metrics: BotMetrics) -> AsyncIterator[str]:
    """The metrics server over the bot's engine and storage, wired as bot.__main__ wires it."""
    service = bot.service
    metrics.watch_engine(service.engine)
    checks = HealthChecks([discord_check(metrics.gateway), model_check(service.engine, service.default_model),
                           database_check(service.storage)])
    async with ops_server(metrics, checks, "127.0.0.1", 0) as port:
        yield f"http://127.0.0.1:{port}"


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(scrape: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_healthz_is_503_until_the_model_loads_then_200_and_metrics_move_with_a_write(
        rig: DiscordRig) -> None:
    metrics = BotMetrics()
    async with rig.running(gateway=metrics.gateway, load_delay_s=2.0, on_write=metrics.observe_db_write) as bot, \
            ops_of(bot, metrics) as base:
        loading = await get(f"{base}/healthz")
        await rig.until(lambda: _ready(bot), timeout=20)
        ready = await get(f"{base}/healthz")
        before = samples((await get(f"{base}/metrics"))[1])
        await rig.final(await rig.slash(rig.seed.general.id, rig.seed.user.id, "write", {"topic": "owls"}))
        after = samples((await get(f"{base}/metrics"))[1])
    model = rig.model_name
    assert loading[0] == 503 and f"model {model} is not loaded yet" in loading[1]
    assert ready == (200, "ok\n")
    assert value(after, "storybot_discord_connected") == 1
    assert value(after, "storybot_gateway_latency_seconds") > 0
    moved = {name: value(after, name, **labels) - value(before, name, **labels) for name, labels in (
        ("storybot_requests_total", {"outcome": "done", "model": model}),
        ("storybot_time_to_first_token_seconds_count", {}),
        ("storybot_request_latency_seconds_count", {}),
        ("storybot_db_write_seconds_count", {}))}
    writes = moved.pop("storybot_db_write_seconds_count")
    assert moved == {"storybot_requests_total": 1, "storybot_time_to_first_token_seconds_count": 1,
                     "storybot_request_latency_seconds_count": 1}
    assert writes >= 1  # the new story with its turn (its message ids may come just after)
    tokens = value(after, "storybot_tokens_generated_total") - value(before, "storybot_tokens_generated_total")
    assert 4 <= tokens <= 16  # DISCORD_TEST_SETTINGS: between min_new_tokens and max_new_tokens
    assert value(after, "storybot_request_latency_seconds_sum") > value(before, "storybot_request_latency_seconds_sum")
    assert value(after, "storybot_process_resident_memory_bytes") > 0


async def _ready(bot: Any) -> bool:
    return bot.service.engine.model_ready(bot.service.default_model)


async def test_a_busy_refusal_is_counted_as_busy(rig: DiscordRig) -> None:
    metrics = BotMetrics()
    slow = {"max_new_tokens": 100, "min_new_tokens": 100, "seed": 7, "stop_at_paragraph": False}
    async with rig.running(gateway=metrics.gateway, max_per_user=1, step_delay_s=0.05, settings=slow) as bot, \
            ops_of(bot, metrics) as base:
        first = await rig.slash(rig.seed.general.id, rig.seed.user.id, "write", {"topic": "owls"})
        await rig.until(lambda: _writing(bot))
        refused = await rig.private_answer(await rig.slash(rig.seed.general.id, rig.seed.user.id, "write",
                                                           {"topic": "bats"}))
        scrape = samples((await get(f"{base}/metrics"))[1])
        bot.active._running[0].cancel()  # let the first end now (Stop)
        await rig.final(first)
    assert refused.content.startswith("Sorry: I'm busy")
    assert value(scrape, "storybot_requests_total", outcome="busy", model=rig.model_name) == 1
    assert value(scrape, "storybot_queue_length") + value(scrape, "storybot_rows_running") == 1


async def _writing(bot: Any) -> bool:
    return bot.service.engine.stats().running == 1


async def test_json_logs_parse_line_by_line_and_carry_one_request_id_from_command_to_last_edit(
        rig: DiscordRig) -> None:
    rig.fake.world.token = REALISTIC_TOKEN
    out = io.StringIO()
    handler = make_handler("json", stream=out)  # no secrets to redact: nothing may log the token at all
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        async with rig.running():
            await rig.final(await rig.slash(rig.seed.general.id, rig.seed.user.id, "write", {"topic": "owls"}))
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    text = out.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    command = next(line for line in lines if line["logger"] == "bot.discord.client"
                   and line["message"].startswith("/write from user"))
    request_id = command["request_id"]
    about = [line for line in lines if line.get("request_id") == request_id]
    stages = {line["logger"] for line in about}
    assert {"bot.discord.client", "bot.service", "bot.engine.worker", "bot.discord.stream"} <= stages
    assert any(line["message"].startswith("last edit done") for line in about)
    assert any(" done on " in line["message"] for line in about if line["logger"] == "bot.engine.worker")
    assert REALISTIC_TOKEN not in text
