"""Every fault a remote server can have, each against the fake OpenAI-compatible server.

Before the first token a try is retried (text is never written twice); after it the text is
kept and the request ends with Failure.REMOTE_CUT; the API key never reaches a log line."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from bot.engine.remote.breaker import CircuitBreaker
from bot.engine.remote.spec import Secret
from bot.engine.requests import Failure
from bot.generation import failure_message
from testing.fakeopenai import DEFAULT_TEXT, FakeOpenAI, Fault
from tests.remote_helpers import REMOTE, at, events_of, remote_engine, request, streamed

WORDS = DEFAULT_TEXT.split(" ")


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_connection_refused_is_retried_then_fails_with_a_clear_message() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    async with remote_engine(at(REMOTE, url)) as engine:
        final = await engine.submit(request()).result()
    assert final.kind == "error" and final.failure is Failure.REMOTE_DOWN and final.text == "fake"
    assert failure_message(final.failure, final.text).startswith("the server that runs fake is not answering")


async def test_a_connect_timeout_counts_as_a_failed_try() -> None:
    # A listening socket whose backlog is full: the kernel drops further connection attempts,
    # so a client's connect hangs until its own timeout, as with an unreachable host.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    try:
        async with remote_engine(at(REMOTE, url, connect_timeout_s=0.2, first_token_timeout_s=5.0)) as engine:
            started = time.monotonic()
            final = await engine.submit(request()).result()
            took = time.monotonic() - started
            (status,) = engine.stats().endpoints
    finally:
        for sock in (*fillers, listener):
            sock.close()
    assert final.failure is Failure.REMOTE_DOWN and took < 5.0, "it waited for the first-token timeout"
    assert status.state == "open"  # three failed connects in a row


async def test_no_first_token_in_time_is_retried_without_writing_anything_twice() -> None:
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url, first_token_timeout_s=0.3)) as engine:
        server.faults.append(Fault("silent"))
        events = await events_of(engine.submit(request()))
        await asyncio.sleep(0.1)
    first, second = server.completions()
    assert first.disconnected and second.finished
    assert events[-1].kind == "done" and streamed(events) == DEFAULT_TEXT


async def test_a_stream_that_stalls_midway_keeps_its_text_and_ends_with_a_note() -> None:
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url, stall_timeout_s=0.3)) as engine:
        server.faults.append(Fault("stall", after=3))
        events = await events_of(engine.submit(request()))
    final = events[-1]
    assert final.kind == "error" and final.failure is Failure.REMOTE_CUT
    assert streamed(events) == " ".join(WORDS[:3]) and len(server.completions()) == 1, "retried after text"
    assert "stopped in the middle" in failure_message(final.failure, final.text) and "stalled" in final.text


async def test_429_waits_for_retry_after_then_streams_once() -> None:
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url)) as engine:
        server.faults.append(Fault("status", status=429, retry_after=0.6))
        started = time.monotonic()
        events = await events_of(engine.submit(request()))
        took = time.monotonic() - started
        (status,) = engine.stats().endpoints
    assert took >= 0.6 and len(server.completions()) == 2
    assert events[-1].kind == "done" and streamed(events) == DEFAULT_TEXT
    assert status.state == "closed", "a busy server is not a broken one"


async def test_429_that_never_ends_fails_as_busy() -> None:
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url)) as engine:
        server.faults.extend([Fault("status", status=429, retry_after=0.05)] * 3)
        final = await engine.submit(request()).result()
    assert final.failure is Failure.REMOTE_BUSY and len(server.completions()) == 3


@pytest.mark.parametrize("status", [500, 503])
async def test_a_server_error_is_retried(status: int) -> None:
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url)) as engine:
        server.faults.append(Fault("status", status=status))
        events = await events_of(engine.submit(request()))
    assert events[-1].kind == "done" and streamed(events) == DEFAULT_TEXT and len(server.completions()) == 2


async def test_a_stream_that_ends_without_done_after_text_is_cut_not_complete() -> None:
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url)) as engine:
        server.faults.append(Fault("cut", after=4))
        events = await events_of(engine.submit(request()))
        server.faults.append(Fault("cut", after=0))  # nothing written yet: a plain retry
        again = await events_of(engine.submit(request()))
    assert events[-1].failure is Failure.REMOTE_CUT and streamed(events) == " ".join(WORDS[:4])
    assert "ended before the server finished" in events[-1].text
    assert again[-1].kind == "done" and streamed(again) == DEFAULT_TEXT


async def test_a_malformed_chunk_ends_the_paragraph_with_its_text_kept() -> None:
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url)) as engine:
        server.faults.append(Fault("malformed", after=2))
        events = await events_of(engine.submit(request()))
    assert events[-1].failure is Failure.REMOTE_CUT and streamed(events) == " ".join(WORDS[:2])


async def test_a_dropped_connection_after_text_is_cut() -> None:
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url)) as engine:
        server.faults.append(Fault("close", after=2))
        events = await events_of(engine.submit(request()))
    assert events[-1].failure is Failure.REMOTE_CUT and streamed(events) == " ".join(WORDS[:2])


async def test_a_bad_key_tells_the_owner_once_and_members_kindly_and_never_shows_the_key(
        caplog: pytest.LogCaptureFixture) -> None:
    key = "sk-very-secret-key-0123456789"
    model = at(REMOTE, "", api_key=Secret(key), api_key_env="FAKE_API_KEY")
    caplog.set_level(logging.DEBUG)
    async with FakeOpenAI(api_key="the-right-key") as server, \
            remote_engine(at(model, server.url)) as engine:
        first = await engine.submit(request()).result()
        second = await engine.submit(request()).result()
        stats = repr(engine.stats())
    assert first.failure is Failure.REMOTE_KEY and second.failure is Failure.REMOTE_KEY
    assert len(server.completions()) == 2, "a refused key is not retried"
    assert server.completions()[0].authorization == f"Bearer {key}"
    owner = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(owner) == 1 and "refused the API key" in owner[0] and "FAKE_API_KEY" in owner[0]
    said = failure_message(first.failure, first.text)
    assert "owner" in said and key not in said and key not in stats and key not in repr(model)
    assert not [r for r in caplog.records if key in r.getMessage() or key in str(r.args)]


async def test_the_breaker_opens_fails_fast_then_a_probe_closes_it() -> None:
    clock_breaker = CircuitBreaker(failures_to_open=2, cooldown_s=0.3)
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url), breaker=clock_breaker) as engine:
        server.down = True
        first = await engine.submit(request()).result()
        states = [engine.stats().endpoints[0].state]
        tried = len(server.completions())
        fast = await engine.submit(request()).result()
        assert len(server.completions()) == tried, "a request went to a URL marked down"
        await asyncio.sleep(0.45)  # the cool-down is over: half-open, and a probe fails
        server.down = False
        deadline = time.monotonic() + 5
        while engine.stats().endpoints[0].state != "closed" and time.monotonic() < deadline:
            states.append(engine.stats().endpoints[0].state)
            await asyncio.sleep(0.05)
        states.append(engine.stats().endpoints[0].state)
        back = await engine.submit(request()).result()
    assert first.failure is Failure.REMOTE_DOWN and fast.failure is Failure.REMOTE_DOWN
    assert states[0] == "open" and states[-1] == "closed" and back.kind == "done"
    assert any(r.path == "/v1/models" for r in server.requests[tried:]), "never probed"
