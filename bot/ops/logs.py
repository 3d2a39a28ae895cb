"""Logging set-up: plain text lines or, with LOG_FORMAT=json, one JSON object per line.

Every line about a request carries its id (bot.ops.request_ids), and the secrets the bot
holds (the Discord token, API keys) are replaced before any handler writes them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

from bot.ops.request_ids import RequestIdFilter

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY_LOGGERS = ("transformers", "httpx", "huggingface_hub", "discord.gateway")
REDACTED = "<redacted>"
OURS = "_storybot_handler"
MIN_SECRET_CHARS = 8  # shorter "secrets" would redact ordinary words


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, request_id when
    the line is about a request, and the traceback as `exception` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if request_id := getattr(record, "request_id", ""):
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic line, with `[request id]` after the logger's name when there is one."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", "")
        if request_id:
            head, sep, rest = text.partition(": ")
            text = f"{head} [{request_id}]{sep}{rest}"
        return text


class RedactingFormatter(logging.Formatter):
    """Wraps a formatter and replaces each secret in its output (traceback included)."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self.inner = inner
        self.secrets = tuple(s for s in secrets if s and len(s) >= MIN_SECRET_CHARS)

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


def make_handler(log_format: str, secrets: Iterable[str] = (), stream: TextIO | None = None) -> logging.Handler:
    """A stream handler in `log_format` ("text" or "json") that adds request ids and hides secrets."""
    handler = logging.StreamHandler(stream or sys.stderr)
    inner = JsonFormatter() if log_format == "json" else TextFormatter()
    handler.setFormatter(RedactingFormatter(inner, secrets))
    handler.addFilter(RequestIdFilter())
    return handler


def configure_logging(level: str, log_format: str = "text", secrets: Iterable[str] = ()) -> None:
    """The root logger writes to stderr at `level` through one handler of `make_handler`."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, OURS, False)]:  # configured twice: replace ours
        root.removeHandler(old)
    handler = make_handler(log_format, secrets)
    setattr(handler, OURS, True)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # Python's warnings become log lines too, not bare stderr text
    if log_format == "json":
        quiet_libraries()


def quiet_libraries() -> None:
    """JSON lines only: transformers logs through the root logger instead of its own stderr
    handler, and its progress bars (a model's first load) are off. tqdm reads TQDM_DISABLE when
    it is imported, so a bar of a library that uses tqdm directly may still print once."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    library_logging = sys.modules.get("transformers.utils.logging")
    if library_logging is not None:
        library_logging.disable_default_handler()
        library_logging.enable_propagation()
        library_logging.disable_progress_bar()
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
