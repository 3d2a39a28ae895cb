"""One remote request from its first try to its last event: tries, retries and its rows' text.

A try that fails before any text arrives is retried (on another healthy replica when there is
one), so text is never written twice; once text has streamed, a failure keeps it and ends the
paragraph with a note (Failure.REMOTE_CUT), and nothing half-done is stored as complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from bot.engine.remote.client import RETRY_AFTER_CAP_S, Piece, Pieces, RemoteFault, open_stream
from bot.engine.remote.dialects import sampling_fields
from bot.engine.remote.prompting import prompt_fields
from bot.engine.remote.replicas import Endpoint, choose
from bot.engine.remote.spec import RemoteModel
from bot.engine.requests import Event, Failure, RequestHandle, StreamedText
from models.params import GenerationParams

log = logging.getLogger(__name__)

MAX_TRIES = 3  # tries of one request before its first token, over all replicas
RETRY_DELAYS_S = (0.2, 0.5)  # waits between tries when the server names no Retry-After


@dataclass
class RemoteRow(StreamedText):
    """One variant of a remote request: its text grows by the server's chunks (a chunk is
    counted as a token: these servers stream one token per chunk)."""

    params: GenerationParams = field(kw_only=True)
    count: int = 0
    raw: str = field(default="", repr=False)
    server_reason: str | None = None

    def take(self, piece: str) -> None:
        """Add a chunk's text; stop strings and the paragraph's end apply as for in-process rows."""
        self.count += 1
        before = self.text
        self.raw += piece
        self.text = self.raw.lstrip()
        self.settle(self.params, self.count, before, lambda: self.raw)

    def written(self) -> int:
        return self.count


@dataclass
class Callbacks:
    """What a remote request reports to the engine (the same as the worker's rows do)."""

    deliver_final: Callable[[StreamedText], None]
    tokens: Callable[[int], None]
    ttft: Callable[[float], None]


@dataclass
class Attempt:
    """The replica a request holds a place on; moving to another frees the place here."""

    endpoint: Endpoint
    tried: list[Endpoint] = field(default_factory=list)

    def move_to(self, other: Endpoint) -> None:
        self.endpoint.in_flight -= 1
        other.in_flight += 1
        self.endpoint = other


async def stream_rows(model: RemoteModel, endpoints: list[Endpoint], attempt: Attempt, handle: RequestHandle,
                      rows: list[RemoteRow], seed: int | None, key: str, report: Callbacks) -> None:
    """Stream one HTTP request for `rows` (one choice each), retrying before the first text."""
    params = handle.request.params
    fields = prompt_fields(model, handle.request.prompt, params.max_new_tokens) | sampling_fields(
        params, model.dialect, seed, n=len(rows), continuation=bool(handle.request.prompt.history))
    for number in range(MAX_TRIES):
        try:
            await one_try(model, attempt.endpoint, rows, fields, report)
            attempt.endpoint.breaker.success()
            return
        except RemoteFault as fault:
            if any(row.count for row in rows):  # text was shown: keep it, never write it twice
                raise
            note_fault(model, attempt.endpoint, fault)
            delay = fault.retry_after_s if fault.retry_after_s is not None else \
                RETRY_DELAYS_S[min(number, len(RETRY_DELAYS_S) - 1)]
            if not fault.retryable or number == MAX_TRIES - 1:
                raise
            attempt.tried.append(attempt.endpoint)
            other = choose(endpoints, key, exclude=attempt.tried)
            if other is not None and other.has_room:
                attempt.move_to(other)  # another replica: at once
                continue
            if not attempt.endpoint.breaker.closed:
                raise RemoteFault("down", "every replica is marked down") from None
            if delay > RETRY_AFTER_CAP_S:
                raise
            await asyncio.sleep(delay)  # the same replica again, after a pause


async def one_try(model: RemoteModel, endpoint: Endpoint, rows: list[RemoteRow],
                  fields: dict[str, object], report: Callbacks) -> None:
    """Send the request once and stream it into `rows`; raise RemoteFault if it fails."""
    chat = model.api == "chat"
    try:
        async with asyncio.timeout(model.first_token_timeout_s) as timer:
            response = await open_stream(endpoint.client, model, fields)
            stream = Pieces(response, chat)
            try:
                async with contextlib.aclosing(stream.__aiter__()) as pieces:
                    await read_pieces(pieces, rows, model, timer, report)
            finally:
                await response.close()  # closing the stream makes the server abort and free the slot
    except TimeoutError:
        started = any(row.count for row in rows)
        raise RemoteFault("down", "the stream stalled" if started else
                          f"no first token within {model.first_token_timeout_s:g} s") from None
    for row in rows:
        if not row.done and row.server_reason is None and not stream.done:
            raise RemoteFault("down", "the stream ended before the server finished")
        if not row.done:
            row.finish(row.raw, "length" if row.server_reason == "length" else "stop")
            report.deliver_final(row)


async def read_pieces(pieces: AsyncIterator[Piece], rows: list[RemoteRow], model: RemoteModel,
                      timer: asyncio.Timeout, report: Callbacks) -> None:
    """Each piece into its row; the first text (and each after) pushes the timeout to the stall limit."""
    loop = asyncio.get_running_loop()
    async for piece in pieces:
        row = rows[piece.index] if 0 <= piece.index < len(rows) else None
        if row is None or row.done:
            continue
        if piece.text:
            timer.reschedule(loop.time() + model.stall_timeout_s)
            take_text(row, piece.text, report)
        if piece.finish_reason and not row.done:
            row.server_reason = piece.finish_reason
        if all(r.done or r.server_reason for r in rows):
            return  # every row is done: the caller closes the stream, which frees the server's slot


def take_text(row: RemoteRow, piece: str, report: Callbacks) -> None:
    """One chunk's text into its row, and the text event or the row's end out to its handle."""
    handle = row.handle
    if row.first_token_at is None:
        row.first_token_at = time.monotonic()
        if row.variant == 0:
            report.ttft(row.first_token_at - handle.submitted_at)
    row.take(piece)
    handle.tokens_written += 1
    report.tokens(1)
    if row.finished_reason:
        report.deliver_final(row)
    elif row.pending_text:
        handle.deliver_here(Event("text", text=row.take_pending(), variant=row.variant))


def note_fault(model: RemoteModel, endpoint: Endpoint, fault: RemoteFault) -> None:
    """Count a failed try against its URL and tell the owner what matters, once."""
    if fault.kind == "down" and endpoint.breaker.failure(fault.reason):
        log.warning("remote model %s: %s is marked down after %d failures (%s); requests go elsewhere "
                    "or fail fast until a probe finds it back", model.name, endpoint.label,
                    endpoint.breaker.failures, fault.reason)
    elif fault.kind == "key" and not endpoint.breaker.last_error.startswith("key"):
        endpoint.breaker.last_error = "key refused"
        where = f"the key in {model.api_key_env}" if model.api_key_env else "no key (set api_key_env)"
        log.error("remote model %s: %s refused the API key: %s; fix it in REMOTE_MODELS_FILE",
                  model.name, endpoint.label, where)


def failure_of(fault: RemoteFault) -> Failure:
    """How a request that got no text ends, by the last try's fault."""
    return {"key": Failure.REMOTE_KEY, "busy": Failure.REMOTE_BUSY,
            "refused": Failure.REQUEST_FAILED}.get(fault.kind, Failure.REMOTE_DOWN)
