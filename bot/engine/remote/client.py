"""One streamed request to an OpenAI-compatible server, with the `openai` package's AsyncOpenAI,
and what each way of failing means for the bot (retry, mark the URL down, or tell the owner)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.engine.remote.spec import RemoteModel

if TYPE_CHECKING:
    import openai

# OpenAI's own body fields; everything else a dialect adds travels in `extra_body`.
OPENAI_FIELDS = ("max_tokens", "temperature", "top_p", "seed", "stop", "n", "messages", "prompt")
NO_KEY = "none"  # sent when the owner set no key: local servers ignore it, and OPENAI_API_KEY is never read
RETRY_AFTER_CAP_S = 10.0  # a longer Retry-After is not waited for: the request fails as busy


def make_client(model: RemoteModel, url: str) -> openai.AsyncOpenAI:
    """A client for one URL. The openai package's own retries are off: the dispatcher retries,
    only before the first token, and on another replica when there is one."""
    import openai  # here: importing it takes most of a second, and only remote models need it

    timeout = openai.Timeout(connect=model.connect_timeout_s, read=max(model.first_token_timeout_s,
                             model.stall_timeout_s) + 5.0, write=30.0, pool=None)
    return openai.AsyncOpenAI(base_url=url, api_key=model.api_key.reveal() or NO_KEY, max_retries=0,
                              timeout=timeout)


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


async def open_stream(client: openai.AsyncOpenAI, model: RemoteModel, fields: dict[str, Any]) -> Any:
    """Send the request; the server's raw streaming answer (raises RemoteFault). The caller
    closes it (`await response.close()`), which closes the HTTP stream."""
    standard = {k: v for k, v in fields.items() if k in OPENAI_FIELDS}
    extra = {k: v for k, v in fields.items() if k not in OPENAI_FIELDS}
    resource = client.chat.completions if model.api == "chat" else client.completions
    try:
        # The raw response, not the client's typed chunks: building a typed chunk object cost
        # about twenty times a json.loads of it (bench/remote_overhead.py), and with hundreds of
        # streams that was most of the event loop's time.
        return await resource.with_streaming_response.create(  # type: ignore[call-overload]
            model=model.served_model, stream=True, extra_body=extra or None, **standard).__aenter__()
    except Exception as error:
        raise fault_of(error) from error


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
        except (asyncio.CancelledError, TimeoutError, RemoteFault):
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


def fault_of(error: BaseException) -> RemoteFault:
    """What an exception from the client means for the bot, in one line without secrets."""
    import openai

    if isinstance(error, RemoteFault):
        return error
    if isinstance(error, openai.APITimeoutError):
        return RemoteFault("down", "the server did not answer in time")
    if isinstance(error, openai.APIConnectionError):
        return RemoteFault("down", "the server cannot be reached")
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        if status in (401, 403):
            return RemoteFault("key", f"the server refused the API key ({status})")
        if status == 429:
            return RemoteFault("busy", "the server is busy (429)", retry_after(error.response))
        if status >= 500:
            return RemoteFault("down", f"the server failed ({status})", retry_after(error.response))
        return RemoteFault("refused", f"the server refused the request ({status}: {short(error.message)})")
    return RemoteFault("down", f"the stream broke ({type(error).__name__})")


def retry_after(response: Any) -> float | None:
    """The Retry-After header in seconds (the number form; a date is not used by these servers)."""
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except (TypeError, ValueError, AttributeError):
        return None


def short(text: object) -> str:
    return str(text).strip().splitlines()[0][:160] if str(text).strip() else ""
