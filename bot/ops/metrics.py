"""Prometheus metrics for the bot, in a registry of its own (no module-level state).

The engine keeps its own counters (bot/engine/metrics.py, cheap and lock-protected) and knows
nothing of Prometheus; `EngineCollector` reads them when /metrics is scraped. What lives outside
the engine (database writes, the Discord gateway, remote endpoints) is measured here.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.engine.metrics import Buckets
from bot.engine.worker import Engine

PREFIX = "storybot"
DB_WRITE_BOUNDS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
OUTCOMES = ("done", "busy", "cancelled", "failed")


@dataclass
class GatewayState:
    """The Discord connection as the bot last saw it; the Discord front keeps it up to date."""

    connected: bool = False
    latency: Callable[[], float] | None = None
    """The gateway's heartbeat round trip in seconds (discord.py's `Client.latency`)."""

    def latency_s(self) -> float | None:
        if self.latency is None:
            return None
        value = self.latency()
        return value if math.isfinite(value) else None


@dataclass
class EndpointStates:
    """Remote model endpoints (OpenAI-compatible servers) and whether each answers: a remote
    backend registers a function that lists them; none is registered without one."""

    sources: list[Callable[[], dict[str, bool]]] = field(default_factory=list)

    def states(self) -> dict[str, bool]:
        merged: dict[str, bool] = {}
        for source in self.sources:
            merged.update(source())
        return merged


def histogram_family(name: str, documentation: str, buckets: Buckets) -> HistogramMetricFamily:
    pairs = [("+Inf" if math.isinf(bound) else repr(bound), count) for bound, count in buckets.cumulative()]
    return HistogramMetricFamily(name, documentation, buckets=pairs, sum_value=buckets.total)


class EngineCollector(Collector):
    """Reads the engine's counters at scrape time: nothing is added to its loop."""

    def __init__(self, engine: Engine, gateway: GatewayState, endpoints: EndpointStates) -> None:
        self.engine, self.gateway, self.endpoints = engine, gateway, endpoints

    def collect(self) -> Iterator[Metric]:
        stats = self.engine.stats()
        export = self.engine.metrics.export()
        yield GaugeMetricFamily(f"{PREFIX}_queue_length", "Requests waiting for a place in the batch.",
                                value=stats.queue_length)
        yield GaugeMetricFamily(f"{PREFIX}_rows_running", "Rows (request variants) in the running batches.",
                                value=stats.running)
        yield CounterMetricFamily(f"{PREFIX}_tokens_generated", "Tokens generated since start-up.",
                                  value=export.tokens_total)
        requests = CounterMetricFamily(f"{PREFIX}_requests", "Requests by outcome (done, busy: refused "
                                       "by a full queue or the member's limit, cancelled, failed) and model.",
                                       labels=["outcome", "model"])
        for (model, outcome), count in sorted(export.requests.items()):
            requests.add_metric([outcome, model], count)
        yield requests
        yield histogram_family(f"{PREFIX}_time_to_first_token_seconds",
                               "From submission to a request's first token.", export.first_token)
        yield histogram_family(f"{PREFIX}_request_latency_seconds",
                               "From submission to the end of a request that was written.", export.latency)
        loaded = GaugeMetricFamily(f"{PREFIX}_model_loaded", "1 for each model loaded.", labels=["model"])
        for model in stats.models:
            loaded.add_metric([model], 1)
        yield loaded
        yield from self._outside()

    def _outside(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(f"{PREFIX}_discord_connected", "1 while the Discord gateway is connected.",
                                value=int(self.gateway.connected))
        latency = self.gateway.latency_s()
        if latency is not None:
            yield GaugeMetricFamily(f"{PREFIX}_gateway_latency_seconds",
                                    "Discord gateway heartbeat round trip.", value=latency)
        endpoints = GaugeMetricFamily(f"{PREFIX}_remote_endpoint_up",
                                      "1 when a remote model endpoint answers, 0 when it does not.",
                                      labels=["endpoint"])
        for endpoint, up in sorted(self.endpoints.states().items()):
            endpoints.add_metric([endpoint], int(up))
        yield endpoints


class RuntimeCollector(Collector):
    """The event loop's tasks and the process's threads at scrape time: a count that keeps rising
    is a leak (the soak run, bench/soak.py, reads them here)."""

    def collect(self) -> Iterator[Metric]:
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # scraped from outside the loop (a test calling exposition())
            tasks = 0
        yield GaugeMetricFamily(f"{PREFIX}_asyncio_tasks", "Tasks on the bot's event loop.", value=tasks)
        yield GaugeMetricFamily(f"{PREFIX}_threads", "Threads of the process.", value=threading.active_count())


class BotMetrics:
    """The registry /metrics serves: the engine's figures, database writes, the process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.gateway = GatewayState()
        self.endpoints = EndpointStates()
        self.db_write = Histogram(f"{PREFIX}_db_write_seconds", "A database write transaction, from "
                                  "asking for it to its commit.", buckets=DB_WRITE_BOUNDS_S,
                                  registry=self.registry)
        ProcessCollector(namespace=PREFIX, registry=self.registry)  # memory, CPU, open files
        self.registry.register(RuntimeCollector())

    def observe_db_write(self, seconds: float) -> None:
        self.db_write.observe(seconds)

    def watch_engine(self, engine: Engine) -> None:
        """Publish `engine`'s counters (call once per engine)."""
        self.registry.register(EngineCollector(engine, self.gateway, self.endpoints))

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
