"""What the owner declares about a remote model: its name, URLs, dialect, key and limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Dialect = Literal["vllm", "sglang", "llamacpp", "ollama", "openai"]
DIALECTS: tuple[Dialect, ...] = ("vllm", "sglang", "llamacpp", "ollama", "openai")
Api = Literal["chat", "completion"]
APIS: tuple[Api, ...] = ("chat", "completion")
WhenDown = Literal["fail", "default"]


class Secret:
    """A value that never shows in a repr, a log line or an f-string."""

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value itself, only for the HTTP client that sends it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "<secret>" if self._value else "<unset>"

    __str__ = __repr__


@dataclass(frozen=True)
class RemoteModel:
    """One named remote model, as members choose it (`/settings set model NAME`)."""

    name: str
    """The name members see and choose."""
    urls: tuple[str, ...]
    """Base URLs of its replicas, each ending in /v1 (http://10.0.0.5:8000/v1)."""
    served_model: str
    """The model id the server knows (`model` in the request body)."""
    dialect: Dialect = "openai"
    """Which extra sampling fields the server accepts (dialects.py)."""
    api: Api = "chat"
    """chat: /v1/chat/completions with the chat prompt; completion: /v1/completions with the
    plain-LM continuation prompt."""
    api_key: Secret = field(default_factory=lambda: Secret(""))
    """Taken from the environment variable the owner names; never logged or shown."""
    api_key_env: str = ""
    """That variable's name (it may be logged: the value never is)."""
    max_in_flight: int = 16
    """Requests in flight per URL at most; the server batches them, the rest wait in the fair queue."""
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 60.0
    """No first text within this long: the try fails (and is retried on another replica)."""
    stall_timeout_s: float = 30.0
    """No chunk for this long once the stream runs: it is cut, with the text kept."""
    context_tokens: int = 4096
    """The server's context window; a long story loses whole paragraphs from its middle to fit."""
    when_down: WhenDown = "fail"
    """fail: a clear message when no replica answers; default: the default model writes instead."""
