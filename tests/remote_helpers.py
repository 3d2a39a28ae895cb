"""Helpers for tests of remote models: an Engine whose model `fake` is served by FakeOpenAI."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from bot.engine.remote.breaker import CircuitBreaker
from bot.engine.remote.spec import RemoteModel
from bot.engine.requests import Event, GenerationRequest, RequestHandle
from bot.engine.worker import Engine
from models.base import Prompt
from models.params import GenerationParams

REMOTE = RemoteModel(name="fake", urls=("http://127.0.0.1:9/v1",), served_model="fake-model", dialect="vllm",
                     connect_timeout_s=1.0, first_token_timeout_s=2.0, stall_timeout_s=1.0)
# Settings a remote server honours everywhere (no n-gram ban, no DRY): nothing to mark.
PLAIN = GenerationParams(model="fake", no_repeat_ngram_size=0, dry_multiplier=0.0, max_new_tokens=64,
                         min_new_tokens=0, stop_at_paragraph=False)


def no_local_model(name: str) -> Any:
    raise FileNotFoundError(f"no local model {name}")


@contextlib.asynccontextmanager
async def remote_engine(*models: RemoteModel, breaker: CircuitBreaker | None = None,
                        **options: Any) -> AsyncIterator[Engine]:
    """A started Engine offering `models` (urls as given), with no local model."""
    engine = Engine(no_local_model, options.pop("default_model", "fake"), remote=models, **options)
    if breaker is not None:
        for endpoints in engine.remote.endpoints.values():
            for endpoint in endpoints:
                endpoint.breaker = breaker
    async with engine:
        yield engine


def at(model: RemoteModel, *urls: str, **changes: Any) -> RemoteModel:
    """`model` served at these URLs."""
    return replace(model, urls=urls, **changes)


def request(topic: str = "a lighthouse keeper", params: GenerationParams = PLAIN, key: str = "c1",
            user: int | None = None, history: list[str] | None = None, affinity: str | None = None) -> GenerationRequest:
    return GenerationRequest(Prompt(topic, history or []), params, fairness_key=key, user_id=user,
                             affinity_key=affinity)


async def events_of(handle: RequestHandle) -> list[Event]:
    return [event async for event in handle.events()]


def streamed(events: list[Event]) -> str:
    """The text the front saw streamed for variant 0."""
    return "".join(e.text for e in events if e.kind == "text" and e.variant == 0)
