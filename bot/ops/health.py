"""Readiness: is the bot able to do its job right now? Each check gives a reason when not.

Ready when Discord is connected (when the bot runs on Discord), the default model is loaded and
the database takes a write. `/healthz` (bot.ops.server) answers 200 or 503 with the reasons.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.engine.worker import Engine
from bot.ops.metrics import GatewayState
from bot.storage import Storage

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[str | None]]
"""One readiness check: None when fine, else the reason in one line."""


@dataclass(frozen=True)
class Health:
    """The outcome of every check: `reasons` is empty when the bot is ready."""

    reasons: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.reasons


def model_check(engine: Engine, name: str) -> Check:
    async def check() -> str | None:
        if engine.model_ready(name):
            return None
        failure = engine.model_failure(name)
        return f"model {name} could not be loaded: {failure}" if failure else f"model {name} is not loaded yet"
    return check


def database_check(storage: Storage) -> Check:
    async def check() -> str | None:
        try:
            await storage.probe_write()
        except Exception as error:  # any failure means "not ready", with what SQLite said
            return f"the database does not take a write: {error}"
        return None
    return check


def discord_check(gateway: GatewayState) -> Check:
    async def check() -> str | None:
        return None if gateway.connected else "Discord is not connected"
    return check


class HealthChecks:
    """The checks that decide readiness, run together on each /healthz."""

    def __init__(self, checks: list[Check]) -> None:
        self.checks = checks

    async def run(self) -> Health:
        reasons = []
        for check in self.checks:
            try:
                reason = await check()
            except Exception as error:  # a broken check is a reason, never a crash of /healthz
                log.exception("health check failed")
                reason = f"a health check failed: {error}"
            if reason:
                reasons.append(reason)
        return Health(tuple(reasons))
