"""Operations settings and parts: their configuration, log lines, health reasons, the dashboard."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import ConfigError, load_config
from bot.engine.metrics import EngineStats, Metrics
from bot.ops.health import HealthChecks, discord_check
from bot.ops.logs import make_handler
from bot.ops.metrics import BotMetrics, EngineCollector, GatewayState
from bot.ops.request_ids import current_request_id, start_request

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "storybot.json"
SECRET = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GAbCdE.secret-token-value-abcdefghijklmnopqrstuvwx"


def test_operations_are_off_until_the_owner_turns_them_on(tmp_path: Path) -> None:
    config = load_config({}, dotenv=tmp_path / "missing.env")
    assert (config.log_format, config.metrics_port, config.metrics_host) == ("text", None, "127.0.0.1")
    assert (config.backup_hours, config.backup_dir, config.backup_keep) == (0, Path("data/backups"), 7)
    on = load_config({"LOG_FORMAT": "JSON", "METRICS_PORT": "9108", "BACKUP_HOURS": "0.5",
                      "BACKUP_DIR": "/srv/backups", "BACKUP_KEEP": "30"}, dotenv=None)
    assert (on.log_format, on.metrics_port, on.backup_hours, on.backup_dir, on.backup_keep) == (
        "json", 9108, 0.5, Path("/srv/backups"), 30)


def test_bad_operations_values_are_each_listed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_config({"LOG_FORMAT": "xml", "METRICS_PORT": "70000", "BACKUP_HOURS": "daily",
                     "BACKUP_KEEP": "0"}, dotenv=None)
    problems = error.value.problems
    assert sorted(p.split(" ")[0] for p in problems) == ["BACKUP_HOURS", "BACKUP_KEEP", "LOG_FORMAT", "METRICS_PORT"]
    assert "LOG_FORMAT must be text or json, got 'xml'" in problems
    assert "METRICS_PORT must be between 1 and 65535, got 70000" in problems


def log_through(log_format: str, secrets: tuple[str, ...] = ()) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    logger = logging.getLogger(f"test.ops.{log_format}.{len(secrets)}")
    logger.handlers = [make_handler(log_format, secrets, stream=out)]
    logger.propagate, logger.level = False, logging.DEBUG
    return logger, out


def test_json_lines_carry_the_tasks_request_id_and_an_exception_whole() -> None:
    logger, out = log_through("json")

    async def command() -> str:
        request_id = start_request()
        logger.info("queued %s", "a request")
        await asyncio.create_task(asyncio.sleep(0))  # tasks it starts inherit the id
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it failed")
        return request_id

    request_id = asyncio.run(command())
    logger.info("outside any request")
    first, second, third = (json.loads(line) for line in out.getvalue().splitlines())
    assert (first["message"], first["request_id"], first["level"]) == ("queued a request", request_id, "INFO")
    assert second["request_id"] == request_id and "ValueError: boom" in second["exception"]
    assert "request_id" not in third and current_request_id() == ""
    assert re.fullmatch(r"[0-9a-f]{12}", request_id)


def test_an_id_passed_with_extra_wins_and_text_lines_show_it() -> None:
    logger, out = log_through("text")
    logger.info("from the worker thread", extra={"request_id": "abc123"})
    assert " test.ops.text.0 [abc123]: from the worker thread" in out.getvalue()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_known_secret_is_redacted_even_inside_a_traceback(log_format: str) -> None:
    logger, out = log_through(log_format, (SECRET,))
    try:
        raise RuntimeError(f"login with {SECRET} refused")
    except RuntimeError:
        logger.exception("token %s", SECRET)
    assert SECRET not in out.getvalue() and "<redacted>" in out.getvalue()


async def test_health_says_why_it_is_not_ready() -> None:
    gateway = GatewayState()

    async def broken() -> str | None:
        raise OSError("disk gone")

    checks = HealthChecks([discord_check(gateway), broken])
    down = await checks.run()
    gateway.connected = True
    later = await HealthChecks([discord_check(gateway)]).run()
    assert not down.ready and down.reasons == ("Discord is not connected", "a health check failed: disk gone")
    assert later.ready


def test_the_dashboard_plots_only_metrics_the_bot_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = {name for expr in expressions for name in re.findall(r"\bstorybot_[a-z_]+", expr)}

    class IdleEngine:  # an engine's figures at start-up, with nothing loaded
        metrics = Metrics()

        def stats(self) -> EngineStats:
            return EngineStats(0, 0, 0.0, None, None, 0, 0, 0, ("m",), "cpu", 0.0)

    metrics = BotMetrics()
    metrics.endpoints.sources.append(lambda: {"http://gpu-box:8000": True})
    metrics.gateway.latency = lambda: 0.05
    metrics.registry.register(EngineCollector(IdleEngine(), metrics.gateway, metrics.endpoints))  # type: ignore[arg-type]
    exported = set()
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        exported |= {sample.name for sample in family.samples}  # a family without samples yet is still declared:
        exported.add(family.name + ("_total" if family.type == "counter" else ""))
    exported |= {name.removesuffix(suffix) for name in exported for suffix in ("_bucket", "_count", "_sum")}
    assert len(expressions) >= 10
    assert used and used <= exported, sorted(used - exported)
