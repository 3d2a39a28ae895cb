"""Request ids: one short id per command, carried by every log line about what it started.

A front sets it where a command or click begins (`start_request`); asyncio tasks started from
there inherit it (contextvars), the service copies it onto the engine request, and the engine's
worker thread, which contextvars do not reach, logs it from the request (`extra=`).
"""

from __future__ import annotations

import contextvars
import logging
import secrets

_current: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def new_request_id() -> str:
    """Twelve hex digits: unique enough to grep for, short enough to read."""
    return secrets.token_hex(6)


def start_request() -> str:
    """Give the current task (and the tasks it starts) a new request id; returns it."""
    request_id = new_request_id()
    _current.set(request_id)
    return request_id


def current_request_id() -> str:
    """The id of the request this task works for, or "" outside one."""
    return _current.get()


def request_id_or_new() -> str:
    """The current request's id; a fresh one when the caller set none (a test, a script)."""
    return _current.get() or start_request()


class RequestIdFilter(logging.Filter):
    """Puts `request_id` on every record: the one passed with `extra=`, else the task's own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = _current.get()
        return True
