"""The log of every REST call the client made, and queries over it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .waiting import DEFAULT_TIMEOUT, Notifier

# How many recent calls a timeout error lists, to show what the client did instead.
_CALLS_IN_ERRORS = 12


@dataclass
class RecordedFile:
    """One file part of a multipart request."""

    field: str
    filename: str
    data: bytes
    content_type: str | None = None


@dataclass
class RecordedCall:
    """One REST request and how the fake answered it.

    ``path`` is relative to ``/api/v10`` without the query; ``route`` is the matched template
    (``/channels/{channel_id}/messages``) or ``"UNKNOWN"``. ``json`` is the JSON body, or the
    ``payload_json`` part of a multipart body, whose files are in ``files``. ``status`` is
    ``None`` until the answer is sent; ``injected`` marks answers made by fault injection.
    """

    method: str
    path: str
    route: str
    query: dict[str, str]
    json: Any
    files: list[RecordedFile]
    time: float
    authorization: str | None = None
    status: int | None = None
    injected: bool = False
    response: Any = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        """Whether the fake has answered this call."""
        return self.status is not None

    @property
    def ok(self) -> bool:
        """Whether it was answered with a 2xx status."""
        return self.status is not None and 200 <= self.status < 300

    def summary(self) -> str:
        """One line for error messages: ``PATCH /channels/1/messages/2 -> 429``."""
        return f"{self.method} {self.path} -> {self.status}{' (injected)' if self.injected else ''}"


class CallLog:
    """Every REST call in arrival order, with waits that wake on each new answer."""

    def __init__(self, notifier: Notifier) -> None:
        self.calls: list[RecordedCall] = []
        self._notifier = notifier

    def add(self, call: RecordedCall) -> None:
        """Record a call as it arrives."""
        self.calls.append(call)
        self._notifier.notify()

    def answered(self, call: RecordedCall, status: int, response: Any, injected: bool = False) -> None:
        """Fill in how a recorded call was answered."""
        call.status = status
        call.response = response
        call.injected = injected
        self._notifier.notify()

    def calls_to(self, method: str, path_substring: str = "") -> list[RecordedCall]:
        """Calls with this method (``"*"`` for any) whose path contains ``path_substring``."""
        return [
            c
            for c in self.calls
            if (method == "*" or c.method == method.upper()) and path_substring in c.path
        ]

    def describe_recent(self) -> str:
        """The last few calls, for timeout messages."""
        recent = self.calls[-_CALLS_IN_ERRORS:]
        lines = [f"  {c.summary()}" for c in recent] or ["  (no REST calls yet)"]
        return "recent REST calls:\n" + "\n".join(lines)

    async def wait_for_call(
        self,
        predicate: Callable[[RecordedCall], bool],
        timeout: float = DEFAULT_TIMEOUT,
        since: int = 0,
    ) -> RecordedCall:
        """Wait for an answered call (at index ``since`` or later) that matches ``predicate``."""

        def find() -> RecordedCall | None:
            return next((c for c in self.calls[since:] if c.done and predicate(c)), None)

        return await self._notifier.wait_until(
            find, timeout, what="a matching REST call", describe=self.describe_recent
        )
