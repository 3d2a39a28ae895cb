"""The one generation worker: a thread that owns the models and batches every request.

Iteration-level (continuous) batching: requests join the running batch of their model
between decode steps (a bounded prefill per step, so running rows never stall for long)
and leave as soon as they finish or are cancelled. Each row samples with its own settings
(models.sampling). The asyncio side only submits and reads events; no model work ever
runs on the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence

import torch

from bot.engine.batches import ModelBatch, reprefill
from bot.engine.beam_path import write_with_beams
from bot.engine.endings import RequestEnds
from bot.engine.errors import friendly_error, is_out_of_memory
from bot.engine.fair_queue import FairQueue, QueueFull, UserBusy
from bot.engine.loading import ModelLoader, ModelState
from bot.engine.metrics import EngineStats, Metrics, percentile
from bot.engine.remote.dispatcher import RemoteModels
from bot.engine.remote.spec import RemoteModel
from bot.engine.requests import (
    Event,
    Failure,
    Fallback,
    GenerationRequest,
    PreparedRequest,
    Progress,
    RequestHandle,
    Row,
    seed_of,
)
from bot.engine.retell import Embed, RetellJudge
from bot.engine.rewind import rewind
from bot.engine.windows import fit_to_window
from bot.limits import DEFAULT_MAX_BATCH
from models.base import StepModel
from models.params import GenerationParams
from models.sampling import choose_tokens

log = logging.getLogger(__name__)

IDLE_WAIT_S = 0.05  # how long the idle worker sleeps before looking at the queue again
DRAIN_POLL_S = 0.05  # how often a shutdown looks whether the running requests are done


class Engine:
    """Queue plus worker thread. `submit` from asyncio; events come back per request."""

    def __init__(self, loader: Callable[[str], StepModel], default_model: str, *, max_batch: int = DEFAULT_MAX_BATCH,
                 max_waiting: int = 256, max_per_user: int = 2, prefill_budget: int = 512,
                 device: str = "cpu", remote: Sequence[RemoteModel] = (),
                 remote_client: Callable[[RemoteModel, str], object] | None = None,
                 sentence_embedder: Callable[[], Embed] | None = None) -> None:
        self.default_model = default_model
        self.max_batch = max_batch
        self.prefill_budget = prefill_budget  # prompt tokens prefilled per step, at most
        self.device = device
        self.queue: FairQueue[RequestHandle] = FairQueue(max_waiting, max_per_user)
        self.metrics = Metrics()
        self._ends = RequestEnds(self.queue, self.metrics)
        self._batches: dict[str, ModelBatch] = {}
        self._ids = itertools.count(1)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loader = ModelLoader(loader, default_model, loaded=self._wake.set)
        self._retell = RetellJudge(sentence_embedder)  # MiniLM unless a test brings its own
        # Remote models share the fair queue, the limits and the metrics; they run on the event loop.
        extra = {"client_factory": remote_client} if remote_client is not None else {}
        self.remote = RemoteModels(remote, self.queue, self.metrics, finish_handle=self._ends.finish,
                                   deliver_final=self._ends.deliver_final, to_default=self._to_default, **extra)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="generation-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._loader.shutdown()

    async def drain(self, grace_s: float) -> None:
        """Shut down gently: fail every waiting request now, give running ones up to `grace_s`
        seconds to finish, then stop the worker, which fails what still runs. Each failed
        request ends with an "error" event for Failure.SHUTTING_DOWN. The caller stops submitting."""
        for handle in self.queue.take(10**9):
            self._ends.finish(handle, Event("error", failure=Failure.SHUTTING_DOWN))
        deadline = time.monotonic() + grace_s
        while self._busy() and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)
        await self.remote.close(Failure.SHUTTING_DOWN)
        await asyncio.to_thread(self.stop)

    def _busy(self) -> bool:
        running = any(not row.done for batch in list(self._batches.values()) for row in batch.rows)
        return running or len(self.queue) > 0 or self.remote.running() > 0

    def preload(self, name: str) -> None:
        """Start loading a model in the background (start-up does not wait for it)."""
        if not self.remote.owns(name):
            self._loader.request(name)

    async def __aenter__(self) -> Engine:
        self.start()
        self.remote.ensure_started()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.remote.close(Failure.SHUTTING_DOWN)
        await asyncio.to_thread(self.stop)

    # -- asyncio side -------------------------------------------------------------------------
    def submit(self, request: GenerationRequest) -> RequestHandle:
        """Queue a request; raises QueueFull or UserBusy (nothing queued then)."""
        request.params.validate()
        handle = RequestHandle(next(self._ids), request, asyncio.get_running_loop())
        try:
            self.queue.add(handle, self._estimate_wait)
        except (QueueFull, UserBusy):
            self.metrics.refused(request.params.model)
            raise
        log.debug("request %s queued for %s", handle.id, request.params.model,
                  extra={"request_id": request.request_id})
        if self.remote.owns(request.params.model):
            self.remote.ensure_started()
            self.remote.wake()
        else:
            self._loader.request(request.params.model)
            self._wake.set()
        return handle

    def unsupported(self, params: GenerationParams) -> tuple[str, ...]:
        """The settings in `params` that its model cannot honour (a remote server's dialect)."""
        return self.remote.unsupported(params)

    def check_room(self, user_id: int | None, model: str = "") -> None:
        """Raise QueueFull or UserBusy if `submit` would refuse this user's request now (counted
        as a busy request for `model`: a front that asks first never submits it)."""
        try:
            self.queue.check_room(user_id, self._estimate_wait)
        except (QueueFull, UserBusy):
            self.metrics.refused(model)
            raise

    def model_ready(self, name: str) -> bool:
        """Whether `name` is loaded and can write (the health check asks for the default model)."""
        return name in self._loader.models or self.remote.owns(name)

    def model_failure(self, name: str) -> str | None:
        """Why `name` could not be loaded, if it could not."""
        return self._loader.failure(name)

    def position(self, handle: RequestHandle) -> int | None:
        """1-based place of a request in the line of those waiting behind others, or None if
        it is not waiting (it runs, or joins the batch at the next step)."""
        return self.progress(handle).position

    def progress(self, handle: RequestHandle) -> Progress:
        """Where a request stands. It waits only behind others: a request that fits into the
        batch's free places joins at the next step, so it is "starting", not in a line."""
        in_queue = self.queue.position(handle)
        if in_queue is None:
            return Progress("writing", tokens=handle.tokens_written)
        if self.remote.owns(handle.request.params.model):
            return self.remote.progress(handle, in_queue)
        if self._loader.is_loading(handle.request.params.model):
            return Progress("loading")
        running = sum(len(batch.rows) for batch in list(self._batches.values()))
        free = max(0, self.max_batch - running)
        if in_queue <= free:
            return Progress("starting")
        return Progress("waiting", position=in_queue - free)

    def cancel(self, handle: RequestHandle) -> None:
        """Stop a request: at once if it waits, at the next step if it runs."""
        handle.cancelled = True
        if self.queue.remove(handle):
            cancelled = Event("cancelled")
            self._ends.count(handle, cancelled)
            handle.deliver(cancelled)
        self.remote.cancel(handle)
        self._wake.set()

    def stats(self) -> EngineStats:
        m = self.metrics
        return EngineStats(
            queue_length=len(self.queue), running=self.remote.running() + sum(
                1 for b in self._batches.values() for r in b.rows if not r.done),
            tokens_per_s=m.tokens_per_s(), ttft_p50_s=percentile(list(m.ttft), 0.5),
            latency_p50_s=percentile(list(m.latency), 0.5), requests_done=m.done,
            requests_failed=m.failed, tokens_total=m.tokens_total,
            models=(*self._loader.models, *self.remote.models), device=self.device,
            uptime_s=time.monotonic() - m.started, requests_cancelled=m.cancelled,
            endpoints=self.remote.statuses(),
        )

    def _to_default(self, handle: RequestHandle, fallback: Fallback) -> bool:
        """A remote request whose servers are down runs on the default model instead (the owner
        chose so): back at the head of its lane, marked so its "started" event says why."""
        default = self.default_model
        if self.remote.owns(default) or handle.cancelled:
            return False
        handle.fallback = Fallback(fallback.wanted, fallback.reason, default)
        handle.request = dataclasses.replace(handle.request, params=handle.request.params.replace(model=default))
        self._loader.request(default)
        self.queue.requeue_front([handle])
        self._wake.set()
        return True

    def _estimate_wait(self, waiting: int) -> float:
        rate = max(self.metrics.tokens_per_s(), 20.0)
        return waiting * 120 / rate  # about 120 tokens a paragraph

    # -- the worker loop ----------------------------------------------------------------------
    def _run(self) -> None:
        with torch.inference_mode():
            self._loop_until_stopped()
        self._ends.fail_all(self._batches.values(), Failure.SHUTTING_DOWN)

    def _loop_until_stopped(self) -> None:
        while not self._stop.is_set():
            try:
                admitted = self._admit()
                stepped = self._step_all()
            except Exception as error:  # the worker must outlive any single failure
                log.exception("generation worker step failed")
                for batch in list(self._batches.values()):  # their state is unknown now
                    self._fail_batch(batch, error)
                admitted = stepped = False
            if not admitted and not stepped:
                self._wake.wait(IDLE_WAIT_S)
                self._wake.clear()

    def _admit(self) -> bool:
        free = self.max_batch - sum(len(b.rows) for b in self._batches.values())
        if free <= 0:
            return False
        taken = self.queue.take(free, accept=lambda h: not self.remote.owns(h.request.params.model) and (
            h.cancelled or self._loader.choose(h.request.params.model).state is not ModelState.LOADING))
        budget = self.prefill_budget
        groups: dict[str, list[PreparedRequest]] = {}
        for index, handle in enumerate(taken):
            if budget <= 0:  # the rest waits for the next step, keeping their place in line
                self.queue.requeue_front(taken[index:])
                break
            if handle.cancelled:
                self._ends.finish(handle, Event("cancelled"))
                continue
            choice = self._loader.choose(handle.request.params.model)
            if choice.state is not ModelState.READY:
                self._ends.finish(handle, Event("error", text=choice.reason, failure=Failure.NO_MODEL))
                continue
            handle.deliver(Event("started", fallback=choice.fallback or handle.fallback))
            log.debug("request %s starts on %s", handle.id, choice.name,
                      extra={"request_id": handle.request.request_id})
            prepared = self._prepare(handle, choice.name)
            if prepared is not None:
                groups.setdefault(choice.name, []).append(prepared)
                budget -= len(prepared.prompt_ids) * prepared.params.variants
        started = list(groups.items())
        for index, (model_name, starts) in enumerate(started):
            try:
                self._start_rows(self._batches[model_name], starts)
            except Exception:  # the worker fails the batch; the others must not vanish with it
                self.queue.requeue_front([start.handle for _, rest in started[index + 1:] for start in rest])
                raise
        return bool(taken)

    def _prepare(self, handle: RequestHandle, model_name: str) -> PreparedRequest | None:
        """Encode the prompt; a beam search runs here, on its own path. Returns what
        `_start_rows` needs, or None when the request already ended."""
        batch = self._batches.get(model_name) or self._batches.setdefault(
            model_name, ModelBatch(self._loader.models[model_name]))
        handle.model_used = model_name
        handle.started_at = time.monotonic()
        try:
            prompt_ids, params = fit_to_window(
                batch.model.encode_prompt(handle.request.prompt, handle.request.params.max_new_tokens),
                handle.request.params, batch.model.context_window)
            if params.strategy != "beam":
                return PreparedRequest(handle, prompt_ids, params)
            write_with_beams(handle, batch.model, prompt_ids, params, self._ends, self.metrics)
        except Exception as error:
            self._fail_rows_of(handle, batch, error)
        return None

    def _start_rows(self, batch: ModelBatch, starts: list[PreparedRequest]) -> None:
        """Prefill new requests' rows together (one join of the batch state, not one each)."""
        model = batch.model
        rows = [Row.start(start.handle, v, start.prompt_ids, start.params, model,
                          seed_of(start.handle, start.params) + v)
                for start in starts for v in range(start.params.variants)]
        for row in (r for r in rows if r.sampling.params.retell_check and r.can_rewind):
            row.retell = self._retell.guard(row.handle.request.prompt.history) if row.handle.request.prompt.history else None
        try:
            logits = model.prefill(batch.state, [row.prompt_ids for row in rows])
        except Exception as error:
            if len(starts) == 1:
                self._fail_rows_of(starts[0].handle, batch, error)
                return
            for start in starts:  # one at a time, so a bad prompt fails only its own request
                self._start_rows(batch, [start])
            return
        batch.rows.extend(rows)
        self._advance(batch, rows, logits)

    def _step_all(self) -> bool:
        stepped = False
        for batch in list(self._batches.values()):
            self._drop_finished(batch)
            if not batch.rows:
                continue
            tokens = torch.tensor([row.next_input for row in batch.rows], dtype=torch.long)
            try:
                logits = batch.model.decode(batch.state, tokens)
            except Exception as error:
                if not self._recover(batch, error):
                    continue
                logits = reprefill(batch, self.max_batch)
            self._advance(batch, batch.rows, logits)
            stepped = True
        return stepped

    def _advance(self, batch: ModelBatch, rows: list[Row], logits: torch.Tensor) -> None:
        """Choose each row's next token, stream its text, and mark rows that are done."""
        try:
            chosen = choose_tokens(logits, [row.sampling for row in rows])
        except Exception as error:  # a sampling failure fails only these rows
            log.exception("sampling failed")
            for row in rows:
                row.finish(row.text, "error", error=friendly_error(error), failure=Failure.REQUEST_FAILED)
                self._ends.deliver_final(row)
            return
        self.metrics.tokens(len(rows))
        for row, token in zip(rows, chosen, strict=True):
            if row.first_token_at is None:
                row.first_token_at = time.monotonic()
                if row.variant == 0:
                    self.metrics.first_token(row.first_token_at - row.handle.submitted_at)
            row.handle.tokens_written += 1
            try:
                row.step(token, batch.model)
                if row.rewind_to is not None:  # it wrote a banned phrase
                    rewind(row, batch.model, batch.state, batch.rows.index(row))
            except Exception as error:  # the tokenizer, say: it concerns this row only
                log.error("row of request %s failed: %s", row.handle.id, friendly_error(error))
                row.finish(row.text, "error", error=friendly_error(error), failure=Failure.STEP_FAILED)
            if row.finished_reason or row.handle.cancelled:
                self._ends.deliver_final(row)
            elif row.pending_text:
                row.handle.deliver(Event("text", text=row.take_pending(), variant=row.variant))

    def _drop_finished(self, batch: ModelBatch) -> None:
        keep = [i for i, row in enumerate(batch.rows) if not row.done and not row.handle.cancelled]
        if len(keep) == len(batch.rows):
            return
        for row in batch.rows:
            if row.handle.cancelled and not row.done:
                row.finish(row.text, "cancelled")
                self._ends.deliver_final(row)
        batch.model.keep(batch.state, keep)
        batch.rows = [batch.rows[i] for i in keep]

    def _recover(self, batch: ModelBatch, error: Exception) -> bool:
        """True if the batch can be rebuilt smaller (out of memory); else its rows fail."""
        if is_out_of_memory(error) and len(batch.rows) > 1:
            self.max_batch = max(1, len(batch.rows) // 2)
            log.warning("out of memory with %d rows; batch limit now %d", len(batch.rows), self.max_batch)
            return True
        log.error("decode step of %s failed: %s", batch.model.name, friendly_error(error))
        self._fail_batch(batch, error)
        return False

    def _fail_batch(self, batch: ModelBatch, error: Exception) -> None:
        """End the batch's unfinished rows with Failure.STEP_FAILED and drop it: the next request for its
        model starts a fresh batch, so nothing of the failed state is used again."""
        reason = friendly_error(error)
        for row in batch.rows:
            if not row.done:
                row.finish(row.text, "error", error=reason, failure=Failure.STEP_FAILED)
                self._ends.deliver_final(row)
        batch.rows = []
        self._batches = {name: kept for name, kept in self._batches.items() if kept is not batch}

    def _fail_rows_of(self, handle: RequestHandle, batch: ModelBatch, error: Exception) -> None:
        log.error("prefill on %s failed: %s", batch.model.name, friendly_error(error))
        self._ends.finish(handle, Event("error", text=friendly_error(error), failure=Failure.REQUEST_FAILED))
