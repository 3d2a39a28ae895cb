"""The one generation worker: a thread that owns the models and batches every request.

Iteration-level (continuous) batching: requests join the running batch of their model
between decode steps (a bounded prefill per step, so running rows never stall for long)
and leave as soon as they finish or are cancelled. Each row samples with its own settings
(models.sampling). The asyncio side only submits and reads events; no model work ever
runs on the event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from bot.engine_types import (
    Event,
    GenerationRequest,
    RequestHandle,
    Row,
    fit_to_window,
    friendly_error,
    is_out_of_memory,
)
from bot.metrics import EngineStats, Metrics, percentile
from bot.scheduler import FairQueue
from models.base import StepModel, UnsupportedStrategy
from models.dry import NO_DRY, DrySettings
from models.params import GenerationParams
from models.sampling import RowSampling, choose_tokens

log = logging.getLogger(__name__)

IDLE_WAIT_S = 0.05  # how long the idle worker sleeps before looking at the queue again
DRAIN_POLL_S = 0.05  # how often a shutdown looks whether the running requests are done
# What every request still waiting or running when the bot stops ends with (an "error" event).
SHUTTING_DOWN = "the bot is shutting down: try again in a minute"
# What the requests of a batch whose step failed end with; the reason is friendly_error's.
STEP_FAILED = "the model failed while writing this paragraph ({reason}): please try again"


class _ModelBatch:
    """One model's running rows and its opaque batch state."""

    def __init__(self, model: StepModel) -> None:
        self.model = model
        self.state = model.new_batch()
        self.rows: list[Row] = []


class Engine:
    """Queue plus worker thread. `submit` from asyncio; events come back per request."""

    def __init__(self, loader: Callable[[str], StepModel], default_model: str, *, max_batch: int = 32,
                 max_waiting: int = 256, max_per_user: int = 2, prefill_budget: int = 512,
                 device: str = "cpu") -> None:
        self._loader = loader
        self.default_model = default_model
        self.max_batch = max_batch
        self.prefill_budget = prefill_budget  # prompt tokens prefilled per step, at most
        self.device = device
        self.queue: FairQueue[RequestHandle] = FairQueue(max_waiting, max_per_user)
        self.metrics = Metrics()
        self._batches: dict[str, _ModelBatch] = {}
        self._models: dict[str, StepModel] = {}
        self._load_errors: dict[str, str] = {}
        self._loading: set[str] = set()
        self._loads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-load")
        self._ids = itertools.count(1)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="generation-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._loads.shutdown(wait=False, cancel_futures=True)

    async def drain(self, grace_s: float) -> None:
        """Shut down gently: fail every waiting request now, give running ones up to `grace_s`
        seconds to finish, then stop the worker, which fails what still runs. Each failed
        request ends with an "error" event saying SHUTTING_DOWN. The caller stops submitting."""
        for handle in self.queue.take(10**9):
            self._finish_handle(handle, Event("error", text=SHUTTING_DOWN))
        deadline = time.monotonic() + grace_s
        while self._busy() and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)
        await asyncio.to_thread(self.stop)

    def _busy(self) -> bool:
        running = any(not row.done for batch in list(self._batches.values()) for row in batch.rows)
        return running or len(self.queue) > 0

    def preload(self, name: str) -> None:
        """Start loading a model in the background (start-up does not wait for it)."""
        self._request_load(name)

    async def __aenter__(self) -> Engine:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    # -- asyncio side -------------------------------------------------------------------------
    def submit(self, request: GenerationRequest) -> RequestHandle:
        """Queue a request; raises QueueFull or UserBusy (nothing queued then)."""
        request.params.validate()
        handle = RequestHandle(next(self._ids), request, asyncio.get_running_loop(), self)
        self.queue.add(handle, self._estimate_wait)
        self._request_load(request.params.model)
        self._wake.set()
        return handle

    def position(self, handle: RequestHandle) -> int | None:
        return self.queue.position(handle)

    def cancel(self, handle: RequestHandle) -> None:
        handle.cancelled = True
        if self.queue.remove(handle):
            handle.deliver(Event("cancelled"))
        self._wake.set()

    def stats(self) -> EngineStats:
        m = self.metrics
        return EngineStats(
            queue_length=len(self.queue), running=sum(1 for b in self._batches.values() for r in b.rows if not r.done),
            tokens_per_s=m.tokens_per_s(), ttft_p50_s=percentile(list(m.ttft), 0.5),
            latency_p50_s=percentile(list(m.latency), 0.5), requests_done=m.done,
            requests_failed=m.failed, tokens_total=m.tokens_total, models=tuple(self._models),
            device=self.device, uptime_s=time.monotonic() - m.started,
        )

    def _estimate_wait(self, waiting: int) -> float:
        rate = max(self.metrics.tokens_per_s(), 20.0)
        return waiting * 120 / rate  # about 120 tokens a paragraph

    # -- model loading ------------------------------------------------------------------------
    def _request_load(self, name: str) -> None:
        if name in self._models or name in self._loading or name in self._load_errors:
            return
        self._loading.add(name)
        self._loads.submit(self._load, name)

    def _load(self, name: str) -> None:
        try:
            started = time.monotonic()
            self._models[name] = self._loader(name)
            log.info("model %s loaded in %.1f s", name, time.monotonic() - started)
        except Exception as error:  # any loading failure falls back to the default model
            reason = friendly_error(error)
            self._load_errors[name] = reason
            log.warning("model %s could not be loaded (%s); using %s instead", name, reason,
                        self.default_model)
            if name != self.default_model:
                self._request_load(self.default_model)
        finally:
            self._loading.discard(name)
            self._wake.set()

    def _resolve_model(self, handle: RequestHandle) -> str | None:
        """The model this request will use now, or None while it is still loading."""
        name = handle.request.params.model
        if name in self._models:
            return name
        if name in self._load_errors and self.default_model in self._models:
            handle.note = (f"model {name} is not available ({self._load_errors[name]}); "
                           f"used {self.default_model}")
            return self.default_model
        if name in self._load_errors and self.default_model in self._load_errors:
            handle.note = f"no model could be loaded: {self._load_errors[self.default_model]}"
            return ""
        return None

    # -- the worker loop ----------------------------------------------------------------------
    def _run(self) -> None:
        with torch.inference_mode():
            self._loop_until_stopped()
        self._fail_everything(SHUTTING_DOWN)

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
        taken = self.queue.take(free, accept=lambda h: h.cancelled or self._resolve_model(h) is not None)
        budget = self.prefill_budget
        groups: dict[str, list[tuple[RequestHandle, list[int], GenerationParams]]] = {}
        for index, handle in enumerate(taken):
            if budget <= 0:  # the rest waits for the next step, keeping their place in line
                self.queue.requeue_front(taken[index:])
                break
            if handle.cancelled:
                self._finish_handle(handle, Event("cancelled"))
                continue
            model_name = self._resolve_model(handle)
            if not model_name:
                self._finish_handle(handle, Event("error", text=handle.note or "no model is available"))
                continue
            prepared = self._prepare(handle, model_name)
            if prepared is not None:
                groups.setdefault(model_name, []).append(prepared)
                budget -= len(prepared[1]) * prepared[2].variants
        started = list(groups.items())
        for index, (model_name, starts) in enumerate(started):
            try:
                self._start_rows(self._batches[model_name], starts)
            except Exception:  # the worker fails the batch; the others must not vanish with it
                self.queue.requeue_front([handle for _, rest in started[index + 1:] for handle, _, _ in rest])
                raise
        return bool(taken)

    def _prepare(self, handle: RequestHandle, model_name: str
                 ) -> tuple[RequestHandle, list[int], GenerationParams] | None:
        """Announce the start and encode the prompt; a beam search runs here, on its own path.
        Returns what `_start_rows` needs, or None when the request already ended."""
        batch = self._batches.get(model_name) or self._batches.setdefault(
            model_name, _ModelBatch(self._models[model_name]))
        handle.model_used = model_name
        handle.started_at = time.monotonic()
        handle.deliver(Event("started", text=handle.note or ""))
        try:
            prompt_ids, params = fit_to_window(
                batch.model.encode_prompt(handle.request.prompt, handle.request.params.max_new_tokens),
                handle.request.params, batch.model.context_window)
            if params.strategy != "beam":
                return handle, prompt_ids, params
            self._beam(handle, batch.model, prompt_ids, params)
        except Exception as error:
            self._fail_rows_of(handle, batch, error)
        return None

    def _start_rows(self, batch: _ModelBatch,
                    starts: list[tuple[RequestHandle, list[int], GenerationParams]]) -> None:
        """Prefill new requests' rows together (one join of the batch state, not one each)."""
        model = batch.model
        breakers = getattr(model, "sequence_breaker_tokens", frozenset())
        rows = [Row(handle, v, prompt_ids, RowSampling.create(
            params, model.eos_token_ids, None if params.seed is None else params.seed + v, model.ngram_free_tokens,
            context=prompt_ids if handle.request.prompt.history else None, sequence_breakers=breakers))
            for handle, prompt_ids, params in starts for v in range(params.variants)]
        try:
            logits = model.prefill(batch.state, [row.prompt_ids for row in rows])
        except Exception as error:
            if len(starts) == 1:
                self._fail_rows_of(starts[0][0], batch, error)
                return
            for start in starts:  # one at a time, so a bad prompt fails only its own request
                self._start_rows(batch, [start])
            return
        batch.rows.extend(rows)
        self._advance(batch, rows, logits)

    def _beam(self, handle: RequestHandle, model: StepModel, prompt_ids: list[int],
              p: GenerationParams) -> None:
        try:
            ids = model.beam_search(prompt_ids, p.num_beams, p.max_new_tokens, p.min_new_tokens,
                                    p.no_repeat_ngram_size, p.repetition_penalty,
                                    DrySettings.of(p) if handle.request.prompt.history else NO_DRY)
        except UnsupportedStrategy as error:
            self._finish_handle(handle, Event("error", text=str(error)))
            return
        row = Row(handle, 0, prompt_ids, RowSampling.create(p, model.eos_token_ids, None))
        for token in ids:
            row.sampling.push(token)
        self.metrics.tokens(len(ids))
        row.finish(model.decode_text(ids), "length" if len(ids) >= p.max_new_tokens else "stop")
        self._deliver_final(row)

    def _step_all(self) -> bool:
        stepped = False
        for batch in list(self._batches.values()):
            self._drop_finished(batch)
            if not batch.rows:
                continue
            tokens = torch.tensor([row.sampling.generated[-1] for row in batch.rows], dtype=torch.long)
            try:
                logits = batch.model.decode(batch.state, tokens)
            except Exception as error:
                if not self._recover(batch, error):
                    continue
                logits = self._rebuild(batch)
            self._advance(batch, batch.rows, logits)
            stepped = True
        return stepped

    def _advance(self, batch: _ModelBatch, rows: list[Row], logits: torch.Tensor) -> None:
        """Choose each row's next token, stream its text, and mark rows that are done."""
        try:
            chosen = choose_tokens(logits, [row.sampling for row in rows])
        except Exception as error:  # a sampling failure fails only these rows
            log.exception("sampling failed")
            for row in rows:
                row.finish(row.text, "error", error=friendly_error(error))
                self._deliver_final(row)
            return
        self.metrics.tokens(len(rows))
        for row, token in zip(rows, chosen, strict=True):
            if row.first_token_at is None:
                row.first_token_at = time.monotonic()
                if row.variant == 0:
                    self.metrics.ttft.append(row.first_token_at - row.handle.submitted_at)
            try:
                row.step(token, batch.model)
            except Exception as error:  # the tokenizer, say: it concerns this row only
                log.error("row of request %s failed: %s", row.handle.id, friendly_error(error))
                row.finish(row.text, "error", error=STEP_FAILED.format(reason=friendly_error(error)))
            if row.finished_reason or row.handle.cancelled:
                self._deliver_final(row)
            elif row.pending_text:
                row.handle.deliver(Event("text", text=row.take_pending(), variant=row.variant))

    def _drop_finished(self, batch: _ModelBatch) -> None:
        keep = [i for i, row in enumerate(batch.rows) if not row.done and not row.handle.cancelled]
        if len(keep) == len(batch.rows):
            return
        for row in batch.rows:
            if row.handle.cancelled and not row.done:
                row.finish(row.text, "cancelled")
                self._deliver_final(row)
        batch.model.keep(batch.state, keep)
        batch.rows = [batch.rows[i] for i in keep]

    def _recover(self, batch: _ModelBatch, error: Exception) -> bool:
        """True if the batch can be rebuilt smaller (out of memory); else its rows fail."""
        if is_out_of_memory(error) and len(batch.rows) > 1:
            self.max_batch = max(1, len(batch.rows) // 2)
            log.warning("out of memory with %d rows; batch limit now %d", len(batch.rows), self.max_batch)
            return True
        log.error("decode step of %s failed: %s", batch.model.name, friendly_error(error))
        self._fail_batch(batch, error)
        return False

    def _fail_batch(self, batch: _ModelBatch, error: Exception) -> None:
        """End the batch's unfinished rows with STEP_FAILED and drop it: the next request for its
        model starts a fresh batch, so nothing of the failed state is used again."""
        message = STEP_FAILED.format(reason=friendly_error(error))
        for row in batch.rows:
            if not row.done:
                row.finish(row.text, "error", error=message)
                self._deliver_final(row)
        batch.rows = []
        self._batches = {name: kept for name, kept in self._batches.items() if kept is not batch}

    def _rebuild(self, batch: _ModelBatch) -> torch.Tensor:
        """Re-prefill every row (prompt + text so far) in chunks that fit the new limit."""
        if batch.model.device.type == "cuda":
            torch.cuda.empty_cache()
        batch.state = batch.model.new_batch()
        pieces = []
        chunk = max(1, self.max_batch)
        for start in range(0, len(batch.rows), chunk):
            rows = batch.rows[start:start + chunk]
            pieces.append(batch.model.prefill(batch.state, [r.prompt_ids + r.sampling.generated[:-1]
                                                            for r in rows]))
        # prefill returns the logits after generated[:-1]: re-choose the last token's successor
        # by decoding it once more, exactly as the failed step would have.
        tokens = torch.tensor([r.sampling.generated[-1] for r in batch.rows], dtype=torch.long)
        del pieces
        return batch.model.decode(batch.state, tokens)

    def _fail_rows_of(self, handle: RequestHandle, batch: _ModelBatch, error: Exception) -> None:
        log.error("prefill on %s failed: %s", batch.model.name, friendly_error(error))
        self._finish_handle(handle, Event("error", text=friendly_error(error)))

    def _deliver_final(self, row: Row) -> None:
        row.done = True
        handle = row.handle
        handle.variants_left -= 1
        handle.texts[row.variant] = row.text
        if row.pending_text:
            handle.deliver(Event("text", text=row.take_pending(), variant=row.variant))
        handle.deliver(Event("variant_done", text=row.text, variant=row.variant,
                             reason=row.finished_reason or "stop"))
        if handle.variants_left <= 0:
            if row.finished_reason == "error":
                self._finish_handle(handle, Event("error", text=row.error or "generation failed"))
            elif handle.cancelled:
                self._finish_handle(handle, Event("cancelled"))
            else:
                self._finish_handle(handle, Event("done", text=handle.texts[0], reason=row.finished_reason))

    def _finish_handle(self, handle: RequestHandle, event: Event) -> None:
        self.queue.release(handle)
        self.metrics.finished(time.monotonic() - handle.submitted_at, ok=event.kind == "done")
        handle.deliver(event)

    def _fail_everything(self, message: str) -> None:
        for batch in self._batches.values():
            for row in batch.rows:
                if not row.done:
                    row.finish(row.text, "error", error=message)
                    self._deliver_final(row)
            batch.rows = []
        for handle in self.queue.take(10**9):
            self._finish_handle(handle, Event("error", text=message))
