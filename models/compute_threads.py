"""Where torch's CPU work may run without slowing the generation worker down.

Torch spreads CPU work over OpenMP threads (libgomp). Every thread that runs parallel work gets
its own team of OpenMP threads, kept until that thread ends. Once a process holds more OpenMP
threads than cores, libgomp stops spinning at barriers (100 spins instead of 300,000) and puts
threads to sleep instead; a decode step passes ~150 barriers (two or three per layer), each then
a sleep and a wake-up. Measured on 2 Xeon cores, the compiled step of one row: 9 ms when its
thread's team is the only one, 21 ms once a model had been loaded on another thread still alive.

So the generation worker is the one long-lived thread that runs heavy torch work; loading runs on
a thread that ends when there is nothing left to load (ModelLoader), and benchmarks load and run
baselines through `in_passing_thread`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_passing_thread(work: Callable[[], T], name: str = "torch-work") -> T:
    """`work()` run on a new thread that ends with it (its OpenMP team ends too); returns its
    result or raises its exception here."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed back to the caller below
            outcome["error"] = error

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
