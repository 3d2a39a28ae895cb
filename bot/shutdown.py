"""Stopping gently: SIGTERM or Ctrl-C asks the running front to shut down instead of dying.

The first signal sets an event; the front then refuses new commands, tells waiting users,
lets running paragraphs finish or cuts them with a message, and returns, so that `bot.__main__`
closes the engine and the database normally. A second signal acts as it always does (SIGTERM
kills, Ctrl-C raises KeyboardInterrupt), for when a gentle stop takes too long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """While inside, the first SIGTERM or SIGINT sets `stop` (and the next one acts as usual)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def first_signal(received: signal.Signals) -> None:
        log.info("%s received: shutting down (send it again to stop at once)", received.name)
        _remove(loop, installed)
        stop.set()

    for sig in SIGNALS:
        try:
            loop.add_signal_handler(sig, first_signal, sig)
        except (NotImplementedError, RuntimeError):  # no signal handlers here (Windows, a thread)
            continue
        installed.append(sig)
    try:
        yield
    finally:
        _remove(loop, installed)


def _remove(loop: asyncio.AbstractEventLoop, installed: list[signal.Signals]) -> None:
    while installed:
        loop.remove_signal_handler(installed.pop())


async def run_until_stopped(main: Coroutine[Any, Any, None], stop: asyncio.Event | None,
                            shut_down: Callable[[], Awaitable[None]]) -> None:
    """Run `main` to its end; if `stop` is set first, await `shut_down()`, which must make `main`
    end, then wait for it. Cancelling this cancels `main` too."""
    task = asyncio.ensure_future(main)
    if stop is None:
        await task
        return
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await shut_down()
        await task
    except asyncio.CancelledError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise
    finally:
        stopped.cancel()
