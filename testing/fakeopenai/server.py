"""FakeOpenAI: the OpenAI-compatible API as vLLM and llama.cpp's server stream it.

Server-sent events: one `data: {json}` line per token (chat chunks carry
`choices[i].delta.content`, completion chunks `choices[i].text`), a last chunk per choice with
its `finish_reason`, then `data: [DONE]`. Each request pops the next queued Fault, if any,
so a test scripts exactly which try fails and how.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

HOST = "127.0.0.1"
DEFAULT_TEXT = ("The lighthouse keeper climbed the stairs at dusk and lit the great lamp. Far out at sea "
                "a small boat turned toward the light, and the keeper smiled as the waves rolled in.")
FaultKind = Literal["status", "silent", "stall", "cut", "malformed", "close"]


@dataclass(frozen=True)
class Fault:
    """What goes wrong with one request. status: answer `status` (with Retry-After when given)
    at once; silent: headers, then nothing; stall: `after` chunks, then nothing; cut: `after`
    chunks, then the stream ends without a finish reason or [DONE]; malformed: `after` chunks,
    then a chunk that is not JSON; close: `after` chunks, then the connection drops."""

    kind: FaultKind
    status: int = 500
    retry_after: float | None = None
    after: int = 0


@dataclass
class Recorded:
    """One request as the server saw it."""

    path: str
    body: dict[str, Any]
    authorization: str
    chunks_sent: int = 0
    finished: bool = False  # the stream reached [DONE]
    disconnected: bool = False  # the client went away mid-stream (Stop, a cut, shutdown)
    received_at: float = field(default_factory=time.monotonic)


class FakeOpenAI:
    """Serves `models`; streams `text` word by word (one word a token), `chunk_delay_s` apart."""

    def __init__(self, models: tuple[str, ...] = ("fake-model",), text: str = DEFAULT_TEXT,
                 chunk_delay_s: float = 0.0, api_key: str | None = None, stamp: bool = False) -> None:
        self.models = models
        self.text = text
        self.chunk_delay_s = chunk_delay_s
        self.api_key = api_key
        self.stamp = stamp  # each word carries the time it was sent (wN@unix-time): the benchmark's delay figure
        self.faults: deque[Fault] = deque()
        self.requests: list[Recorded] = []
        self.down = False  # every request, /v1/models included, gets 503
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def completions(self) -> list[Recorded]:
        """The generation requests (not /v1/models)."""
        return [r for r in self.requests if r.path != "/v1/models"]

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._complete)
        app.router.add_post("/v1/completions", self._complete)
        # handler_cancellation: a client that goes away cancels its handler, so it is recorded at once
        self._runner = web.AppRunner(app, handle_signals=False, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _refusal(self, request: web.Request) -> web.Response | None:
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "Incorrect API key provided", "code": 401}}, status=401)
        if self.down:
            return web.json_response({"error": {"message": "down"}}, status=503)
        return None

    async def _models(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Recorded(request.path, {}, request.headers.get("Authorization", "")))
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model", "owned_by": "fake"}
                                                             for m in self.models]})

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        record = Recorded(request.path, body, request.headers.get("Authorization", ""))
        self.requests.append(record)
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        fault = self.faults.popleft() if self.faults else None
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return web.json_response({"error": {"message": f"injected {fault.status}"}}, status=fault.status,
                                     headers=headers)
        if body.get("model") not in self.models:
            return web.json_response({"error": {"message": f"model {body.get('model')} not found"}}, status=404)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            await self._stream(response, record, body, fault)
        except (ConnectionResetError, asyncio.CancelledError):
            record.disconnected = True
            raise
        return response

    async def _stream(self, response: web.StreamResponse, record: Recorded, body: dict[str, Any],
                      fault: Fault | None) -> None:
        chat = record.path.endswith("chat/completions")
        words = self.text.split(" ")
        limit = min(len(words), int(body.get("max_tokens") or len(words)))
        choices = int(body.get("n") or 1)
        if fault is not None and fault.kind == "silent":
            await asyncio.sleep(3600)
        for position in range(limit):
            if fault is not None and record.chunks_sent >= fault.after:
                await self._misbehave(response, fault)
                return
            word = f"{words[position]}@{time.time():.6f}" if self.stamp else words[position]
            for index in range(choices):
                piece = ("" if position == 0 else " ") + word
                await self._send(response, record, chat, index, piece, None)
            if self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
        reason = "length" if limit < len(words) else "stop"
        for index in range(choices):
            await self._send(response, record, chat, index, "", reason)
        await response.write(b"data: [DONE]\n\n")
        record.finished = True
        await response.write_eof()

    async def _send(self, response: web.StreamResponse, record: Recorded, chat: bool, index: int,
                    text: str, reason: str | None) -> None:
        choice: dict[str, Any] = {"index": index, "finish_reason": reason}
        if chat:
            choice["delta"] = {"content": text} if text else {}
        else:
            choice["text"] = text
        chunk: dict[str, Any] = {"id": f"req-{len(self.requests)}", "object": "chat.completion.chunk" if chat
                                 else "text_completion", "created": 0, "model": self.models[0], "choices": [choice]}
        await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        record.chunks_sent += 1 if text else 0

    async def _misbehave(self, response: web.StreamResponse, fault: Fault) -> None:
        if fault.kind == "stall":
            await asyncio.sleep(3600)
        elif fault.kind == "malformed":
            await response.write(b"data: {this is not json\n\n")
            await asyncio.sleep(3600)
        elif fault.kind == "close":
            transport = response._req.transport if response._req is not None else None  # type: ignore[attr-defined]
            if transport is not None:
                transport.close()
        else:  # cut: the body ends cleanly, but with no finish reason and no [DONE]
            await response.write_eof()
