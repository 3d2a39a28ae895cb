"""One change signal that tests wait on: REST calls and gateway frames both raise it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 5.0
# Checks may read client-side state that raises no signal, so waiters also re-check this often.
POLL_INTERVAL = 0.01


class Notifier:
    """Wakes waiters whenever the fake server's state may have changed."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake every current waiter; later waiters wait for the next change."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait_until(
        self,
        check: Callable[[], T | None],
        timeout: float = DEFAULT_TIMEOUT,
        what: str = "condition",
        describe: Callable[[], str] | None = None,
    ) -> T:
        """Return ``check()``'s first truthy result, re-checking after every change (and poll).

        Raises ``TimeoutError`` naming ``what`` (and ``describe()``'s diagnostics) on timeout.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = check()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                detail = f"\n{describe()}" if describe is not None else ""
                raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}{detail}")
            try:
                await asyncio.wait_for(self._event.wait(), min(remaining, POLL_INTERVAL))
            except TimeoutError:
                pass  # poll again; past the deadline, one last check then the error
