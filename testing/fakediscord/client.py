"""Pointing the real discord.py client at the fake server, and running one for a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, TypeVar

import discord
import discord.gateway
import discord.http
import yarl

ClientT = TypeVar("ClientT", bound=discord.Client)

# Constructor options that make start-up take milliseconds instead of seconds: on_ready waits
# guild_ready_timeout (default 2 s) after the last GUILD_CREATE, and chunking would request members.
FAST_CLIENT_OPTIONS: dict[str, Any] = {"chunk_guilds_at_startup": False, "guild_ready_timeout": 0.05}
# How long closing the client may take before its task is cancelled.
_CLOSE_TIMEOUT = 5.0


class ClientPatch:
    """Points discord.py's REST base and default gateway at a URL; ``restore()`` undoes it.

    Both are class attributes, so this affects every client in the process. Use it as a
    context manager or call ``restore()``.
    """

    def __init__(self, api_url: str, gateway_url: str) -> None:
        self._old_base = discord.http.Route.BASE
        self._old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = api_url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)

    def restore(self) -> None:
        """Put the original URLs back."""
        discord.http.Route.BASE = self._old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._old_gateway

    def __enter__(self) -> ClientPatch:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.restore()


@contextlib.asynccontextmanager
async def running_client(client: ClientT, token: str, timeout: float = 5.0) -> AsyncIterator[ClientT]:
    """Log in, connect and wait for on_ready; close the client (and await its task) on exit.

    Login errors (a bad token, say) raise here instead of dying in a background task.
    """
    try:
        await client.login(token)
    except BaseException:
        await client.close()  # login opened an HTTP session; a failed login must not leak it
        raise
    task = asyncio.create_task(client.connect(), name="fakediscord-client")
    try:
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait({task, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if task in done:
                task.result()  # re-raise why the connection ended
            raise TimeoutError(f"client not ready after {timeout}s")
        yield client
    finally:
        await client.close()
        await _finish(task)


async def _finish(task: asyncio.Task[None]) -> None:
    """Wait for the connect task to end after close; surface the error it died of, if any."""
    done, _ = await asyncio.wait({task}, timeout=_CLOSE_TIMEOUT)
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return
    error = None if task.cancelled() else task.exception()
    if error is not None:
        raise error
