"""How a request ends, for local and remote rows alike: the last events in order, its place in
the queue given back, the metrics counted and one log line (with its request id)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from bot.engine.batches import ModelBatch
from bot.engine.fair_queue import FairQueue
from bot.engine.metrics import Metrics
from bot.engine.requests import Event, Failure, RequestHandle, StreamedText

log = logging.getLogger("bot.engine.worker")  # the end lines keep the worker's logger name


class RequestEnds:
    """Ends requests: used by the worker thread and the remote dispatcher."""

    def __init__(self, queue: FairQueue[RequestHandle], metrics: Metrics) -> None:
        self.queue = queue
        self.metrics = metrics

    def deliver_final(self, row: StreamedText) -> None:
        """A row is done: its last text, its variant_done, and the request's end once every variant is."""
        row.done = True
        handle = row.handle
        handle.variants_left -= 1
        handle.texts[row.variant] = row.text
        if row.finished_reason == "length":
            handle.cuts[row.variant] = row.written()
        if row.pending_text:
            handle.deliver(Event("text", text=row.take_pending(), variant=row.variant))
        handle.deliver(Event("variant_done", text=row.text, variant=row.variant,
                             reason=row.finished_reason or "stop"))
        if handle.variants_left <= 0:
            if row.finished_reason == "error":
                self.finish(handle, Event("error", text=row.error or "", failure=row.failure))
            elif handle.cancelled:
                self.finish(handle, Event("cancelled"))
            else:
                self.finish(handle, Event("done", text=handle.texts[0], reason=row.finished_reason))

    def finish(self, handle: RequestHandle, event: Event) -> None:
        """End a request with `event`: its place in the queue given back, counted, delivered."""
        self.queue.release(handle)
        self.count(handle, event)
        handle.deliver(event)

    def count(self, handle: RequestHandle, event: Event) -> None:
        """Count a request's end in the metrics and log one line about it."""
        latency = time.monotonic() - handle.submitted_at
        model = handle.model_used or handle.request.params.model
        self.metrics.finished(latency, ok=event.kind == "done", cancelled=event.kind == "cancelled", model=model)
        # One line per request at its end: with LOG_FORMAT=json it carries the request id.
        log.info("request %s %s on %s: %d tokens in %.2f s", handle.id, event.kind, model,
                 handle.tokens_written, latency, extra={"request_id": handle.request.request_id})

    def fail_all(self, batches: Iterable[ModelBatch], failure: Failure) -> None:
        """End every running row and every waiting request with `failure` (shutdown)."""
        for batch in batches:
            for row in batch.rows:
                if not row.done:
                    row.finish(row.text, "error", error="", failure=failure)
                    self.deliver_final(row)
            batch.rows = []
        for handle in self.queue.take(10**9):
            self.finish(handle, Event("error", failure=failure))
