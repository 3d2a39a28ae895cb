"""The owner's HTTP port: `/metrics` for Prometheus and `/healthz` for supervisors.

It runs on the bot's own event loop (aiohttp, which discord.py already needs), so a loop that
is stuck stops answering /healthz too, which is what a liveness probe should see. It listens on
127.0.0.1 unless the owner sets METRICS_HOST.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.ops.health import HealthChecks
from bot.ops.metrics import BotMetrics

log = logging.getLogger(__name__)


def make_app(metrics: BotMetrics, health: HealthChecks) -> web.Application:
    async def serve_metrics(request: web.Request) -> web.Response:
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def serve_health(request: web.Request) -> web.Response:
        outcome = await health.run()
        if outcome.ready:
            return web.Response(text="ok\n")
        return web.Response(status=503, text="not ready: " + "; ".join(outcome.reasons) + "\n")

    app = web.Application()
    app.router.add_get("/metrics", serve_metrics)
    app.router.add_get("/healthz", serve_health)
    return app


@contextlib.asynccontextmanager
async def ops_server(metrics: BotMetrics, health: HealthChecks, host: str,
                     port: int | None) -> AsyncIterator[int | None]:
    """Serve /metrics and /healthz on host:port while the body runs; yields the port bound
    (port 0 picks a free one), or None when `port` is None (no server)."""
    if port is None:
        yield None
        return
    runner = web.AppRunner(make_app(metrics, health), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("metrics and health on http://%s:%s/metrics and /healthz", host, bound)
    try:
        yield bound
    finally:
        await runner.cleanup()
