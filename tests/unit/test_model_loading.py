"""Models load in the background, one at a time, on a thread that ends when nothing is left to load
(its OpenMP threads end with it, so the generation worker's team is the process's only one)."""

from __future__ import annotations

import threading
import time

import pytest

from bot.engine.loading import ModelLoader, ModelState
from models.compute_threads import in_passing_thread


def load_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "model-load"]


def wait_until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)
    assert condition()  # type: ignore[operator]


def test_models_load_one_at_a_time_in_order_and_the_thread_then_ends() -> None:
    order: list[str] = []
    running: list[str] = []
    overlaps: list[tuple[str, ...]] = []
    release = threading.Event()

    def load(name: str) -> object:
        running.append(name)
        overlaps.append(tuple(running))
        release.wait(5)
        order.append(name)
        running.remove(name)
        return object()

    loader = ModelLoader(load, "a", loaded=lambda: None)
    for name in ("a", "b", "c", "b"):  # the second "b" is already on its way: loaded once
        loader.request(name)
    assert len(load_threads()) == 1
    assert loader.choose("c").state is ModelState.LOADING
    release.set()
    wait_until(lambda: set(loader.models) == {"a", "b", "c"})
    assert order == ["a", "b", "c"]
    assert all(len(names) == 1 for names in overlaps)
    wait_until(lambda: not load_threads())
    loader.request("d")  # a later request starts a new thread
    wait_until(lambda: "d" in loader.models and not load_threads())


def test_a_model_that_fails_falls_back_to_the_default_loaded_after_it() -> None:
    def load(name: str) -> object:
        if name == "broken":
            raise OSError("no such file")
        return object()

    loader = ModelLoader(load, "default", loaded=lambda: None)
    loader.request("broken")
    wait_until(lambda: "default" in loader.models and not load_threads())
    choice = loader.choose("broken")
    assert choice.state is ModelState.READY and choice.name == "default"
    assert choice.fallback is not None and "no such file" in choice.fallback.reason


def test_after_shutdown_nothing_more_loads() -> None:
    started = threading.Event()
    release = threading.Event()

    def load(name: str) -> object:
        started.set()
        release.wait(5)
        return object()

    loader = ModelLoader(load, "a", loaded=lambda: None)
    loader.request("a")
    loader.request("b")
    started.wait(5)
    loader.shutdown()
    release.set()
    wait_until(lambda: not load_threads())
    assert list(loader.models) == ["a"]


def test_work_on_a_passing_thread_returns_its_value_or_raises_its_error() -> None:
    names: list[str] = []

    def work() -> int:
        names.append(threading.current_thread().name)
        return 42

    assert in_passing_thread(work, "torch-work") == 42
    assert names == ["torch-work"]

    def fail() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        in_passing_thread(fail)
