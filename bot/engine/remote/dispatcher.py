"""Remote requests on the event loop: taken from the engine's fair queue when a replica has
room, streamed, cancelled, and the replicas watched (start-up check, probes of a URL marked down).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from bot.engine.banned_phrases import BannedPhrases
from bot.engine.fair_queue import FairQueue
from bot.engine.metrics import Metrics
from bot.engine.remote.breaker import CircuitBreaker
from bot.engine.remote.client import RemoteFault, fault_of, make_client
from bot.engine.remote.dialects import takes_n, unsupported
from bot.engine.remote.replicas import Endpoint, EndpointStatus, choose
from bot.engine.remote.request import Attempt, Callbacks, RemoteRow, failure_of, stream_rows
from bot.engine.remote.spec import RemoteModel
from bot.engine.requests import Event, Failure, Fallback, Progress, RequestHandle, StreamedText, seed_of
from models.params import GenerationParams

log = logging.getLogger(__name__)

PROBE_TICK_S = 0.25  # how often URLs marked down are looked at (a probe goes out once their cool-down is over)


class RemoteModels:
    """The remote models, their replicas and the requests running on them."""

    def __init__(self, models: Sequence[RemoteModel], queue: FairQueue[RequestHandle], metrics: Metrics, *,
                 finish_handle: Callable[[RequestHandle, Event], None],
                 deliver_final: Callable[[StreamedText], None],
                 to_default: Callable[[RequestHandle, Fallback], bool],
                 client_factory: Callable[[RemoteModel, str], Any] = make_client,
                 breaker_factory: Callable[[], CircuitBreaker] = CircuitBreaker) -> None:
        self.models = {model.name: model for model in models}
        self.endpoints = {model.name: [Endpoint(url, client_factory(model, url), model.max_in_flight,
                                                breaker_factory()) for url in model.urls] for model in models}
        self.queue = queue
        self.metrics = metrics
        self._finish_handle = finish_handle
        self._to_default = to_default
        self._report = Callbacks(deliver_final, metrics.tokens, metrics.ttft.append)
        self._reserved: dict[int, Endpoint | None] = {}
        self._running: dict[int, asyncio.Task[None]] = {}
        # Requests whose task has begun: only those are cancelled as tasks (a task cancelled before
        # it runs never enters its try block, so it could not end its request).
        self._started: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: asyncio.Event | None = None
        self._closing: Failure | None = None

    def owns(self, model_name: str) -> bool:
        return model_name in self.models

    def unsupported(self, params: GenerationParams) -> tuple[str, ...]:
        model = self.models.get(params.model)
        return unsupported(params, model.dialect) if model else ()

    def running(self) -> int:
        return len(self._running)

    def statuses(self) -> tuple[EndpointStatus, ...]:
        return tuple(EndpointStatus(name, e.label, e.breaker.state, e.in_flight, e.max_in_flight)
                     for name, endpoints in self.endpoints.items() for e in endpoints)

    def progress(self, handle: RequestHandle, in_queue: int) -> Progress:
        """A waiting remote request: it starts at once when its replica has room."""
        target = choose(self.endpoints[handle.request.params.model], affinity(handle))
        return Progress("starting") if target is None or target.has_room else Progress("waiting", position=in_queue)

    # -- lifecycle ----------------------------------------------------------------------------
    def ensure_started(self) -> None:
        """Start the dispatcher and the probes on the running loop (once; nothing without models)."""
        if self._wake is not None or not self.models:
            return
        self._wake = asyncio.Event()
        self._tasks = [asyncio.create_task(self._dispatch(), name="remote-dispatch"),
                       asyncio.create_task(self._probe(), name="remote-probe"),
                       *(asyncio.create_task(self._check(name, e), name="remote-check")
                         for name, endpoints in self.endpoints.items() for e in endpoints)]

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def cancel(self, handle: RequestHandle) -> None:
        """Stop a running request: its task ends, which closes its HTTP stream (the server frees the slot)."""
        task = self._running.get(handle.id)
        if task is not None and handle.id in self._started:
            task.cancel()  # one not begun yet sees handle.cancelled when it begins

    async def close(self, failure: Failure) -> None:
        """End every running request with `failure` and stop the dispatcher and probes."""
        self._closing = failure
        running = list(self._running.values())
        for task in self._tasks:
            task.cancel()
        for handle_id, task in self._running.items():
            if handle_id in self._started:
                task.cancel()  # one not begun yet sees _closing when it begins
        await asyncio.gather(*running, *self._tasks, return_exceptions=True)
        self._tasks = []
        for endpoints in self.endpoints.values():
            for endpoint in endpoints:
                await endpoint.client.close()

    # -- dispatching --------------------------------------------------------------------------
    async def _dispatch(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while taken := self.queue.take(1, accept=self._ready):
                handle = taken[0]
                endpoint = self._reserved.pop(handle.id, None)
                if handle.cancelled:
                    if endpoint is not None:
                        endpoint.in_flight -= 1
                    self._finish_handle(handle, Event("cancelled"))
                    continue
                task = asyncio.create_task(self._serve(handle, endpoint), name=f"remote-{handle.id}")
                self._running[handle.id] = task
                # Sending a request costs about a millisecond before its first await: started one
                # per loop turn, a burst of hundreds never holds the loop for long.
                await asyncio.sleep(0)

    def _ready(self, handle: RequestHandle) -> bool:
        """Whether the dispatcher takes `handle` now (called under the queue's lock): a remote
        request whose replica has room (the place is reserved here), or one to fail fast."""
        model = handle.request.params.model
        if model not in self.models:
            return False
        if handle.cancelled:
            self._reserved[handle.id] = None
            return True
        target = choose(self.endpoints[model], affinity(handle))
        if target is not None and not target.has_room:
            return False
        if target is not None:
            target.in_flight += 1
        self._reserved[handle.id] = target
        return True

    async def _serve(self, handle: RequestHandle, endpoint: Endpoint | None) -> None:
        model = self.models[handle.request.params.model]
        params = handle.request.params
        # A server cannot rewind: a banned phrase ends the paragraph before it (never shown).
        rows = [RemoteRow(handle, v, params=params, banned=BannedPhrases.for_row(params.banned_phrases))
                for v in range(params.variants)]
        handle.model_used, handle.started_at = model.name, time.monotonic()
        seed = seed_of(handle, params) if params.do_sample else None
        attempt = Attempt(endpoint) if endpoint is not None else None
        self._started.add(handle.id)
        try:
            if handle.cancelled or self._closing is not None:
                raise asyncio.CancelledError  # stopped (or shutting down) before it began
            missing = unsupported(params, model.dialect)
            if not handle.request.prompt.history:  # DRY is for continuations: a first paragraph has none
                missing = tuple(name for name in missing if name != "dry_multiplier")
            handle.deliver_here(Event("started", unsupported=missing))
            if attempt is None:
                raise RemoteFault("down", "every replica is marked down")
            groups = [rows] if takes_n(model.dialect) else [[row] for row in rows]
            for group in groups:
                group_seed = None if seed is None else seed + group[0].variant
                await stream_rows(model, self.endpoints[model.name], attempt, handle, group, group_seed,
                                  affinity(handle), self._report)
        except RemoteFault as fault:
            self._fail(handle, model, rows, fault)
        except asyncio.CancelledError:
            self._end(rows, "cancelled" if self._closing is None else "error", self._closing)
        except Exception as error:  # a bug here must end this request, not the dispatcher
            log.exception("remote request %s failed", handle.id)
            self._fail(handle, model, rows, fault_of(error))
        finally:
            if attempt is not None:
                attempt.endpoint.in_flight -= 1
            self._running.pop(handle.id, None)
            self._started.discard(handle.id)
            self.wake()

    def _fail(self, handle: RequestHandle, model: RemoteModel, rows: list[RemoteRow], fault: RemoteFault) -> None:
        written = any(row.count for row in rows)
        if not written and fault.kind == "down" and model.when_down == "default" and \
                self._to_default(handle, Fallback(model.name, fault.reason, "")):
            return
        if written:
            self._end(rows, "error", Failure.REMOTE_CUT, fault.reason)
            log.warning("remote model %s: a stream broke after text arrived (%s)", model.name, fault.reason)
        else:
            failure = failure_of(fault)
            self._end(rows, "error", failure, fault.reason if failure is Failure.REQUEST_FAILED else model.name)

    def _end(self, rows: list[RemoteRow], reason: str, failure: Failure | None, detail: str = "") -> None:
        """Finish the rows still open; the last one ends the request (events as the worker's)."""
        open_rows = [row for row in rows if not row.done]
        if not open_rows:
            return
        for row in open_rows:
            if reason == "cancelled":
                row.finish(row.text, "cancelled")
            else:
                row.finish(row.text, "error", error=detail, failure=failure)
            self._report.deliver_final(row)

    # -- watching the replicas ----------------------------------------------------------------
    async def _check(self, name: str, endpoint: Endpoint) -> None:
        """At start-up, one log line per URL: reachable or not, and whether it serves the model."""
        served = self.models[name].served_model
        try:
            async with asyncio.timeout(self.models[name].connect_timeout_s + 5):
                ids = await endpoint.client.model_ids()
        except Exception as error:
            log.warning("remote model %s: %s is not reachable (%s); requests will try it and fall back "
                        "on its breaker", name, endpoint.label, fault_of(error).reason)
            return
        if served in ids:
            log.info("remote model %s: %s is reachable and serves %s", name, endpoint.label, served)
        else:
            log.warning("remote model %s: %s is reachable but does not serve %s (it serves: %s)", name,
                        endpoint.label, served, ", ".join(ids[:5]) or "nothing")

    async def _probe(self) -> None:
        """Probe each URL marked down once its cool-down is over, until it answers again."""
        probing: set[int] = set()
        while True:
            await asyncio.sleep(PROBE_TICK_S)
            for name, endpoints in self.endpoints.items():
                for endpoint in endpoints:
                    if endpoint.breaker.state == "half_open" and id(endpoint) not in probing:
                        probing.add(id(endpoint))
                        await self._probe_one(name, endpoint)
                        probing.discard(id(endpoint))

    async def _probe_one(self, name: str, endpoint: Endpoint) -> None:
        try:
            async with asyncio.timeout(self.models[name].connect_timeout_s + 5):
                await endpoint.client.model_ids()
        except Exception as error:
            endpoint.breaker.failure(fault_of(error).reason)
            log.info("remote model %s: %s still down; next probe in %.0f s", name, endpoint.label,
                     endpoint.breaker.cooldown_s)
            return
        endpoint.breaker.success()
        log.info("remote model %s: %s answers again", name, endpoint.label)
        self.wake()


def affinity(handle: RequestHandle) -> str:
    """The key a request's replica is chosen by: its story's, else its channel's."""
    return handle.request.affinity_key or handle.fairness_key
