"""Models load in the background, once each; a request asks which model it may run on now."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from bot.engine.errors import friendly_error
from bot.engine.requests import Fallback
from models.base import StepModel

log = logging.getLogger(__name__)


class ModelState(Enum):
    READY = "ready"
    LOADING = "loading"
    FAILED = "failed"


@dataclass(frozen=True)
class ModelChoice:
    """Which model a request runs on now: READY (`name`, and `fallback` when the default stands
    in), LOADING (it waits), or FAILED (no model could be loaded; `reason` says why)."""

    state: ModelState
    name: str = ""
    fallback: Fallback | None = None
    reason: str = ""


LOADING = ModelChoice(ModelState.LOADING)


class ModelLoader:
    """Loads models one at a time on a background thread, which ends when nothing is left to load
    (its OpenMP threads end with it: see models/compute_threads.py); a model that fails falls back
    to the default."""

    def __init__(self, loader: Callable[[str], StepModel], default_model: str,
                 loaded: Callable[[], None]) -> None:
        self._loader = loader
        self.default_model = default_model
        self._loaded = loaded  # called after every load, done or failed (wakes the worker)
        self.models: dict[str, StepModel] = {}
        self._errors: dict[str, str] = {}
        self._loading: set[str] = set()
        self._waiting: deque[str] = deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def request(self, name: str) -> None:
        """Start loading `name` unless it is loaded, loading or known to fail."""
        if name in self.models or name in self._loading or name in self._errors:
            return
        self._loading.add(name)
        with self._lock:
            self._waiting.append(name)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._load_waiting, name="model-load", daemon=True)
                self._thread.start()

    def choose(self, name: str) -> ModelChoice:
        """The model a request for `name` runs on now."""
        if name in self.models:
            return ModelChoice(ModelState.READY, name)
        if name in self._errors and self.default_model in self.models:
            return ModelChoice(ModelState.READY, self.default_model,
                               Fallback(name, self._errors[name], self.default_model))
        if name in self._errors and self.default_model in self._errors:
            return ModelChoice(ModelState.FAILED, reason=self._errors[self.default_model])
        return LOADING

    def is_loading(self, name: str) -> bool:
        """Whether a request for `name` waits for a model being loaded (its own, or the default
        it may fall back to)."""
        return name not in self.models and (name in self._loading or self.default_model in self._loading)

    def failure(self, name: str) -> str | None:
        """Why `name` could not be loaded, or None (loaded, loading or never asked for)."""
        return self._errors.get(name)

    def shutdown(self) -> None:
        """Load nothing more (a load under way finishes on its own thread)."""
        with self._lock:
            self._closed = True
            self._waiting.clear()

    def _load_waiting(self) -> None:
        while True:
            with self._lock:
                if not self._waiting or self._closed:
                    self._thread = None
                    return
                name = self._waiting.popleft()
            self._load(name)

    def _load(self, name: str) -> None:
        try:
            started = time.monotonic()
            self.models[name] = self._loader(name)
            log.info("model %s loaded in %.1f s", name, time.monotonic() - started)
        except Exception as error:  # any loading failure falls back to the default model
            reason = friendly_error(error)
            self._errors[name] = reason
            log.warning("model %s could not be loaded (%s); using %s instead", name, reason,
                        self.default_model)
            if name != self.default_model:
                self.request(self.default_model)
        finally:
            self._loading.discard(name)
            self._loaded()
