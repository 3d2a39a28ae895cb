"""One URL's HTTP client for an OpenAI-compatible server (aiohttp), one streamed request, and
what each way of failing means for the bot (retry, mark the URL down, or tell the owner).

aiohttp rather than the `openai` package's AsyncOpenAI: in one run of
`python -m bench.remote_overhead`, reading 50 concurrent streams took 108 us of CPU per token
through the openai client's raw response (httpx) and 26 us through aiohttp (4.2x), and the
client's typed chunk objects cost another 25x a json.loads. discord.py already depends on aiohttp.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.engine.remote.spec import RemoteModel

RETRY_AFTER_CAP_S = 10.0  # a longer Retry-After is not waited for: the request fails as busy
ERROR_BODY_CHARS = 2000  # of an error answer, at most this much is read for its message


@dataclass(frozen=True)
class Piece:
    """Text for one choice (variant) of the request, and the server's finish reason once given."""

    index: int
    text: str
    finish_reason: str | None


class RemoteFault(Exception):
    """A try that failed. `kind`: "down" (refused, timed out, 5xx, a broken stream: counts
    against the URL), "busy" (429), "key" (401/403), "refused" (400/404/422: this request
    only). `retry_after_s` is the server's Retry-After, if any."""

    def __init__(self, kind: str, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        return self.kind in ("down", "busy")


class RemoteClient:
    """The HTTP client of one URL: its session (made on the event loop when first used), the
    key sent as a bearer token (never logged), the streaming request and the model list."""

    def __init__(self, model: RemoteModel, url: str) -> None:
        self.model = model
        self.url = url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=None, connect=self.model.connect_timeout_s,
                                            sock_connect=self.model.connect_timeout_s)
            key = self.model.api_key.reveal()
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            # limit=0: the dispatcher bounds requests in flight per URL (max_in_flight), not the pool
            self._session = aiohttp.ClientSession(timeout=timeout, headers=headers,
                                                  connector=aiohttp.TCPConnector(limit=0))
        return self._session

    async def stream(self, path: str, body: dict[str, Any]) -> StreamResponse:
        """POST `body` to `path` (under the base URL) and return the streaming answer."""
        try:
            response = await self._open_session().post(self.url + path, json=body)
        except Exception as error:
            raise fault_of(error) from error
        if response.status >= 400:
            raise await status_fault(response)
        return StreamResponse(response)

    async def model_ids(self) -> list[str]:
        """The ids `/models` lists (raises RemoteFault)."""
        try:
            async with self._open_session().get(self.url + "/models") as response:
                if response.status >= 400:
                    raise await status_fault(response)
                data = await response.json(content_type=None)
            return [str(entry.get("id")) for entry in data.get("data", []) if isinstance(entry, dict)]
        except RemoteFault:
            raise
        except Exception as error:
            raise fault_of(error) from error

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class StreamResponse:
    """A streaming answer: its lines, and `close`, which closes the HTTP stream (vLLM and
    llama.cpp then abort the request and free its slot)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def iter_lines(self) -> AsyncIterator[str]:
        async for raw in self._response.content:
            yield raw.decode("utf-8", "replace").rstrip("\r\n")

    async def close(self) -> None:
        self._response.close()


def make_client(model: RemoteModel, url: str) -> RemoteClient:
    """The client of one URL of `model`."""
    return RemoteClient(model, url)


async def open_stream(client: RemoteClient, model: RemoteModel, fields: dict[str, Any]) -> StreamResponse:
    """Send the request; the server's streaming answer (raises RemoteFault). The caller closes it."""
    path = "/chat/completions" if model.api == "chat" else "/completions"
    return await client.stream(path, {"model": model.served_model, "stream": True, **fields})


class Pieces:
    """The text pieces of a server-sent-event stream, in order; `done` once `data: [DONE]` came
    (a stream that ends without it was cut). Raises RemoteFault when the stream breaks."""

    def __init__(self, response: Any, chat: bool) -> None:
        self.response = response
        self.chat = chat
        self.done = False

    async def __aiter__(self) -> AsyncIterator[Piece]:
        try:
            async for line in self.response.iter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, comments (": ping"), event names
                data = line[5:].strip()
                if data == "[DONE]":
                    self.done = True
                    return
                for piece in self._parse(data):
                    yield piece
        except (asyncio.CancelledError, RemoteFault):
            raise
        except Exception as error:
            raise fault_of(error) from error

    def _parse(self, data: str) -> list[Piece]:
        try:
            chunk = json.loads(data)
            if isinstance(chunk, dict) and chunk.get("error"):
                raise RemoteFault("down", f"the server reported an error mid-stream ({short(chunk['error'])})")
            found = []
            for choice in chunk.get("choices") or ():
                text = ((choice.get("delta") or {}).get("content") if self.chat else choice.get("text")) or ""
                reason = choice.get("finish_reason")
                if text or reason:
                    found.append(Piece(int(choice.get("index") or 0), text, reason))
            return found
        except RemoteFault:
            raise
        except (ValueError, TypeError, AttributeError):
            raise RemoteFault("down", "the server sent a malformed chunk") from None


async def status_fault(response: aiohttp.ClientResponse) -> RemoteFault:
    """An error answer as a RemoteFault (the response is released)."""
    status = response.status
    try:
        text = (await response.content.read(ERROR_BODY_CHARS)).decode("utf-8", "replace")
    except Exception:  # the body is only for the message
        text = ""
    retry = retry_after(response.headers)
    response.release()
    if status in (401, 403):
        return RemoteFault("key", f"the server refused the API key ({status})")
    if status == 429:
        return RemoteFault("busy", "the server is busy (429)", retry)
    if status >= 500:
        return RemoteFault("down", f"the server failed ({status})", retry)
    return RemoteFault("refused", f"the server refused the request ({status}: {short(error_message(text))})")


def fault_of(error: BaseException) -> RemoteFault:
    """What an exception from the client means for the bot, in one line without secrets."""
    if isinstance(error, RemoteFault):
        return error
    if isinstance(error, TimeoutError):  # aiohttp's connect timeouts are TimeoutErrors too
        return RemoteFault("down", "the server did not answer in time")
    if isinstance(error, aiohttp.ClientConnectorError | ConnectionError):
        return RemoteFault("down", "the server cannot be reached")
    return RemoteFault("down", f"the stream broke ({type(error).__name__})")


def error_message(text: str) -> str:
    """The `error.message` of an OpenAI-style error body, else the body itself."""
    try:
        error = json.loads(text).get("error")
        return str(error.get("message", error) if isinstance(error, dict) else error or text)
    except (ValueError, AttributeError):
        return text


def retry_after(headers: Any) -> float | None:
    """The Retry-After header in seconds (the number form; a date is not used by these servers)."""
    try:
        return max(0.0, float(headers.get("retry-after", "")))
    except (TypeError, ValueError, AttributeError):
        return None


def short(text: object) -> str:
    return str(text).strip().splitlines()[0][:160] if str(text).strip() else ""
