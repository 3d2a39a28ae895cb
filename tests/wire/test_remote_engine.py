"""A remote model behind the engine, against the fake OpenAI-compatible server over loopback."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from models.prompts import SYSTEM_PROMPT
from testing.fakeopenai import DEFAULT_TEXT, FakeOpenAI
from tests.remote_helpers import PLAIN, REMOTE, at, events_of, remote_engine, request, streamed


async def test_a_remote_paragraph_streams_as_text_events_and_ends_done() -> None:
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url)) as engine:
        events = await events_of(engine.submit(request()))
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and kinds[-2:] == ["variant_done", "done"]
    assert kinds.count("text") > 10, "the paragraph did not stream"
    assert events[-1].text == DEFAULT_TEXT and streamed(events) == DEFAULT_TEXT
    (sent,) = server.completions()
    assert sent.path == "/v1/chat/completions" and sent.body["stream"] is True and sent.finished
    assert sent.body["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert "a lighthouse keeper" in sent.body["messages"][1]["content"]


async def test_a_completion_model_gets_the_plain_lm_prompt() -> None:
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url, api="completion")) as engine:
        done = await engine.submit(request(history=["Once there was a lamp."])).result()
    (sent,) = server.completions()
    assert sent.path == "/v1/completions" and done.text == DEFAULT_TEXT
    assert sent.body["prompt"] == "A lighthouse keeper.\n\nOnce there was a lamp.\n\n"


async def test_the_length_limit_cuts_like_the_engine_and_is_reported() -> None:
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url)) as engine:
        handle = engine.submit(request(params=PLAIN.replace(max_new_tokens=8)))
        done = await handle.result()
    assert done.kind == "done" and done.reason == "length" and len(done.text.split()) == 8
    assert handle.cuts == {0: 8} and server.completions()[0].body["max_tokens"] == 8


async def test_the_paragraph_end_and_a_stop_string_end_the_text_bot_side() -> None:
    text = "A first paragraph of some words here.\n\nA second one that must not show."
    async with FakeOpenAI(text=text) as server, remote_engine(at(REMOTE, server.url)) as engine:
        para = await engine.submit(request(params=PLAIN.replace(stop_at_paragraph=True, min_new_tokens=2))).result()
        stop = await engine.submit(request(params=PLAIN.replace(stop="some"))).result()
    assert para.text == "A first paragraph of some words here."
    assert stop.text == "A first paragraph of"
    assert server.completions()[1].body["stop"] == ["some"]


async def test_variants_come_back_as_choices_of_one_request_where_the_server_takes_n() -> None:
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url)) as engine:
        handle = engine.submit(request(params=PLAIN.replace(variants=2)))
        events = await events_of(handle)
    assert sorted(e.variant for e in events if e.kind == "variant_done") == [0, 1]
    (sent,) = server.completions()
    assert sent.body["n"] == 2 and handle.texts == {0: DEFAULT_TEXT, 1: DEFAULT_TEXT}


async def test_variants_are_one_request_each_where_the_server_has_no_n() -> None:
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url, dialect="ollama")) as engine:
        handle = engine.submit(request(params=PLAIN.replace(variants=2, seed=5)))
        await handle.result()
    first, second = server.completions()
    assert "n" not in first.body and (first.body["seed"], second.body["seed"]) == (5, 6)
    assert handle.texts == {0: DEFAULT_TEXT, 1: DEFAULT_TEXT}


async def test_stop_closes_the_http_stream_and_the_server_sees_the_client_go() -> None:
    async with FakeOpenAI(chunk_delay_s=0.05) as server, remote_engine(at(REMOTE, server.url)) as engine:
        handle = engine.submit(request())
        async for event in handle.events():
            if event.kind == "text":  # the first words are shown: Stop
                engine.cancel(handle)
                break
        final = await handle.result()
        await asyncio.sleep(0.2)  # the server notices at its next write
    (sent,) = server.completions()
    assert final.kind == "cancelled" and sent.disconnected and not sent.finished
    assert sent.chunks_sent < len(DEFAULT_TEXT.split())
    assert engine.stats().requests_cancelled == 1 and engine.remote.running() == 0


async def test_shutdown_closes_running_streams_with_the_shutdown_failure() -> None:
    async with FakeOpenAI(chunk_delay_s=0.05) as server, remote_engine(at(REMOTE, server.url)) as engine:
        handle = engine.submit(request())
        await asyncio.sleep(0.2)
        await engine.drain(grace_s=0.1)
        final = await handle.result()
        await asyncio.sleep(0.1)
    assert final.kind == "error" and final.failure is not None and final.failure.value == "shutting_down"
    assert server.completions()[0].disconnected


async def test_stop_just_after_the_dispatcher_took_a_request_still_ends_it() -> None:
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url)) as engine:
        handle = engine.submit(request())
        await asyncio.sleep(0)  # the dispatcher takes it and creates its task, which has not run yet
        assert engine.remote.running() == 1
        engine.cancel(handle)
        final = await asyncio.wait_for(handle.result(), 5)
        (status,) = engine.stats().endpoints
    assert final.kind == "cancelled" and status.in_flight == 0 and engine.remote.running() == 0
    assert not server.completions(), "a stopped request was still sent"


async def test_start_up_logs_one_line_per_url_without_waiting_for_them(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.engine.remote")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    async with FakeOpenAI() as server, FakeOpenAI(models=("another",)) as elsewhere:
        models = (at(REMOTE, server.url), at(REMOTE, elsewhere.url, name="other"), at(REMOTE, dead, name="gone"))
        async with remote_engine(*models):
            deadline = asyncio.get_running_loop().time() + 5
            while len([r for r in caplog.records if "remote model" in r.getMessage()]) < 3:
                assert asyncio.get_running_loop().time() < deadline, "start-up lines missing"
                await asyncio.sleep(0.05)
    lines = sorted(r.getMessage() for r in caplog.records if "remote model" in r.getMessage())
    assert lines[0].startswith("remote model fake: 127.0.0.1:") and lines[0].endswith("is reachable and serves fake-model")
    assert lines[1].startswith("remote model gone:") and "is not reachable" in lines[1]
    assert lines[2].startswith("remote model other:") and "does not serve fake-model (it serves: another)" in lines[2]


async def test_the_started_event_names_what_the_server_cannot_honour_dry_only_for_continuations() -> None:
    params = PLAIN.replace(no_repeat_ngram_size=2, dry_multiplier=0.8, top_k=0, repetition_penalty=1.0)
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url, dialect="ollama")) as engine:
        first = (await events_of(engine.submit(request(params=params))))[0]
        later = (await events_of(engine.submit(request(params=params, history=["Once."]))))[0]
    assert first.kind == "started" and first.unsupported == ("no_repeat_ngram_size",)
    assert later.unsupported == ("no_repeat_ngram_size", "dry_multiplier")
    assert "dry_multiplier" not in server.completions()[1].body


async def test_a_banned_phrase_ends_a_remote_paragraph_before_it_and_is_never_streamed() -> None:
    text = "The keeper climbed the stairs. The story goes on and on, as stories do."
    async with FakeOpenAI(text=text) as server, remote_engine(at(REMOTE, server.url)) as engine:
        events = await events_of(engine.submit(request(params=PLAIN)))
    assert events[-1].kind == "done" and events[-1].text == "The keeper climbed the stairs."
    assert streamed(events) == "The keeper climbed the stairs."  # the built-in "The story" never shown


async def test_a_paragraph_the_length_limit_cuts_ends_with_its_last_whole_sentence() -> None:
    async with FakeOpenAI() as server, remote_engine(at(REMOTE, server.url)) as engine:
        events = await events_of(engine.submit(request(params=PLAIN.replace(max_new_tokens=18))))
    first_sentence = DEFAULT_TEXT.split(". ")[0] + "."
    assert events[-1].reason == "length" and events[-1].text == first_sentence
    assert streamed(events) == first_sentence  # the cut sentence was held back, never shown

