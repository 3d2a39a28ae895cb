"""The remote path's own cost: many concurrent streams from a fast fake server.

    python -m bench.remote_overhead [--streams 200] [--tokens 100] [--chunk-delay 0.02]

The fake OpenAI-compatible server (testing.fakeopenai) runs in its own process and writes each
token as `wN@T`, T being the wall-clock time it was written. The bot's remote path (the fair
queue, the aiohttp stream reader, the rows, the events) streams every request; each text event's
tokens are checked for order and completeness, and `now - T` at the event is the delay from the
server's write to the event's delivery: network, parsing and the bot's own work, an upper bound
on the bot-side delay. The bot-side delay itself is measured too: the stream reader is wrapped
so that each token's arrival (its chunk read and parsed) is stamped, and the event that carries
it is compared with that. Event-loop lag is sampled every 10 ms throughout.

In the same run, two comparisons that chose the bot's client: reading one chunk as the openai
client's typed chunk object (what iterating its AsyncStream builds) against json.loads and the
few fields we read; and reading 50 concurrent streams' lines through the openai client's raw
response (httpx) against aiohttp, which bot/engine/remote/client.py uses. The openai package
comes with the dev dependencies (transformers[serving]).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import bot.engine.remote.request as request_module
from bot.engine.metrics import percentile
from bot.engine.remote.client import Piece, Pieces
from bot.engine.remote.spec import RemoteModel
from bot.engine.requests import GenerationRequest
from bot.engine.worker import Engine
from models.base import Prompt
from models.params import GenerationParams


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, tokens: int, chunk_delay: float) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([sys.executable, "-m", "testing.fakeopenai", "--port", str(port), "--words",
                               str(tokens), "--stamp", "--chunk-delay", str(chunk_delay)],
                              stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the fake server did not start")


ARRIVED: dict[str, float] = {}  # token (wN@T, unique) -> when the bot's reader parsed its chunk


class StampedPieces(Pieces):
    """The remote path's stream reader, stamping when each token's chunk was read and parsed."""

    async def __aiter__(self) -> AsyncIterator[Piece]:
        async for piece in super().__aiter__():
            if piece.text:
                ARRIVED[piece.text.strip()] = time.time()
            yield piece


class Stream:
    """What one consumer saw: delays per token, and whether tokens came in order and complete."""

    def __init__(self) -> None:
        self.next_index = 0
        self.delays: list[float] = []  # server write -> event
        self.bot_delays: list[float] = []  # chunk parsed by the bot -> event
        self.out_of_order = 0

    def take(self, text: str) -> None:
        now = time.time()
        for word in text.split():
            index, _, sent = word.partition("@")
            if int(index[1:]) != self.next_index:
                self.out_of_order += 1
            self.next_index = int(index[1:]) + 1
            self.delays.append(now - float(sent))
            if word in ARRIVED:
                self.bot_delays.append(now - ARRIVED.pop(word))


async def run(url: str, streams: int, tokens: int) -> dict[str, Any]:
    model = RemoteModel(name="fast", urls=(url,), served_model="fake-model", dialect="vllm",
                        max_in_flight=streams, first_token_timeout_s=60, stall_timeout_s=60)
    params = GenerationParams(model="fast", max_new_tokens=min(512, tokens + 8), min_new_tokens=0,
                              stop_at_paragraph=False, no_repeat_ngram_size=0, dry_multiplier=0.0)

    def no_local(name: str) -> Any:
        raise FileNotFoundError(name)

    engine = Engine(no_local, "fast", max_waiting=10 * streams, max_per_user=10 * streams, remote=[model])
    lags: list[float] = []
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - before - 0.01)

    async def one(n: int, seen: Stream) -> str:
        handle = engine.submit(GenerationRequest(Prompt(f"topic {n}"), params, fairness_key=f"channel-{n % 50}"))
        async for event in handle.events():
            if event.kind == "text":
                seen.take(event.text)
            elif event.kind in ("error", "cancelled"):
                return event.kind
        return "done"

    async with engine:
        await one(-1, Stream())  # warm-up: the client's first connection and model classes
        watcher = asyncio.create_task(watch())
        seen = [Stream() for _ in range(streams)]
        began, cpu = time.perf_counter(), time.process_time()
        ends = await asyncio.gather(*(one(n, seen[n]) for n in range(streams)))
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        stop.set()
        await watcher
    delays = [d for s in seen for d in s.delays]
    bot_delays = [d for s in seen for d in s.bot_delays]
    return {"ends": ends, "elapsed": elapsed, "cpu_us_per_token": 1e6 * cpu / max(1, len(delays)), "delivered": len(delays), "expected": streams * tokens,
            "complete": sum(s.next_index == tokens for s in seen), "out_of_order": sum(s.out_of_order for s in seen),
            "delay_p50_ms": 1000 * (percentile(delays, 0.5) or 0), "delay_p99_ms": 1000 * (percentile(delays, 0.99) or 0),
            "delay_max_ms": 1000 * max(delays, default=0),
            "bot_p50_ms": 1000 * (percentile(bot_delays, 0.5) or 0), "bot_p99_ms": 1000 * (percentile(bot_delays, 0.99) or 0), "lag_p99_ms": 1000 * (percentile(lags, 0.99) or 0),
            "lag_max_ms": 1000 * max(lags, default=0)}


CHUNK = ('{"id":"req-1","object":"chat.completion.chunk","created":0,"model":"fake-model","choices":'
         '[{"index":0,"finish_reason":null,"delta":{"content":" lighthouse"}}]}')


def parse_costs(count: int = 5000) -> tuple[float, float]:
    """Microseconds per chunk: (the openai client's typed chunk, our raw parse)."""
    import json

    from openai._models import construct_type
    from openai.types.chat import ChatCompletionChunk

    from bot.engine.remote.client import Pieces

    raw = Pieces(None, chat=True)
    began = time.perf_counter()
    for _ in range(count):
        construct_type(type_=ChatCompletionChunk, value=json.loads(CHUNK))
    typed = time.perf_counter() - began
    began = time.perf_counter()
    for _ in range(count):
        raw._parse(CHUNK)
    ours = time.perf_counter() - began
    return 1e6 * typed / count, 1e6 * ours / count


async def transport_costs(url: str, streams: int = 50) -> tuple[float, float]:
    """CPU microseconds per token of reading `streams` concurrent streams' lines: (the openai
    client's raw response, as the bot reads it; aiohttp, which discord.py already brings)."""
    import json

    import aiohttp
    import openai

    body = {"model": "fake-model", "stream": True, "max_tokens": 512,
            "messages": [{"role": "user", "content": "hi"}]}

    async def with_openai(client: Any) -> int:
        response = await client.chat.completions.with_streaming_response.create(
            model="fake-model", stream=True, max_tokens=512, messages=body["messages"]).__aenter__()
        count = 0
        async for line in response.iter_lines():
            if line.startswith("data:") and not line.endswith("[DONE]"):
                json.loads(line[5:])
                count += 1
        await response.close()
        return count

    async def with_aiohttp(session: aiohttp.ClientSession) -> int:
        count = 0
        async with session.post(f"{url}/chat/completions", json=body) as response:
            async for raw in response.content:
                line = raw.decode().strip()
                if line.startswith("data:") and not line.endswith("[DONE]"):
                    json.loads(line[5:])
                    count += 1
        return count

    client = openai.AsyncOpenAI(base_url=url, api_key="none", max_retries=0)
    await with_openai(client)  # warm-up
    cpu = time.process_time()
    tokens = sum(await asyncio.gather(*(with_openai(client) for _ in range(streams))))
    openai_us = 1e6 * (time.process_time() - cpu) / tokens
    await client.close()
    async with aiohttp.ClientSession() as session:
        await with_aiohttp(session)
        cpu = time.process_time()
        tokens = sum(await asyncio.gather(*(with_aiohttp(session) for _ in range(streams))))
        aiohttp_us = 1e6 * (time.process_time() - cpu) / tokens
    return openai_us, aiohttp_us


def main() -> None:
    request_module.Pieces = StampedPieces  # type: ignore[misc]  # the benchmark's stamps only
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--chunk-delay", type=float, default=0.02, help="seconds between a stream's tokens")
    args = parser.parse_args()
    typed_us, raw_us = parse_costs()
    print(f"reading one chunk: openai typed chunk {typed_us:.1f} us, json.loads + fields {raw_us:.1f} us "
          f"({typed_us / raw_us:.1f}x)")
    port = free_port()
    server = start_server(port, args.tokens, args.chunk_delay)
    try:
        figures = asyncio.run(run(f"http://127.0.0.1:{port}/v1", args.streams, args.tokens))
        openai_us, aiohttp_us = asyncio.run(transport_costs(f"http://127.0.0.1:{port}/v1"))
    finally:
        server.terminate()
        server.wait(10)
    load = os.getloadavg()
    print(f"{args.streams} streams x {args.tokens} tokens, {args.chunk_delay * 1000:.0f} ms between a stream's "
          f"tokens; {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"ended: {figures['ends'].count('done')} done of {args.streams} in {figures['elapsed']:.1f} s; tokens "
          f"delivered {figures['delivered']} of {figures['expected']}, streams complete {figures['complete']}, "
          f"out of order {figures['out_of_order']}; the bot's CPU time {figures['cpu_us_per_token']:.0f} us "
          f"per token (this process only; the server runs in its own)")
    print(f"server write -> event delivered: p50 {figures['delay_p50_ms']:.2f} ms, p99 {figures['delay_p99_ms']:.2f} ms, "
          f"max {figures['delay_max_ms']:.1f} ms; event-loop lag p99 {figures['lag_p99_ms']:.1f} ms, "
          f"max {figures['lag_max_ms']:.1f} ms")
    print(f"bot side, chunk read and parsed -> event delivered: p50 {figures['bot_p50_ms']:.2f} ms, "
          f"p99 {figures['bot_p99_ms']:.2f} ms")
    print(f"reading 50 streams' lines (json.loads each): the openai client's raw response {openai_us:.0f} us "
          f"of CPU per token, aiohttp {aiohttp_us:.0f} us ({openai_us / aiohttp_us:.1f}x)")
    print(f"bot_delay_p99_ms={figures['bot_p99_ms']:.2f} delay_p99_ms={figures['delay_p99_ms']:.2f} loop_lag_p99_ms={figures['lag_p99_ms']:.1f} "
          f"lost={figures['expected'] - figures['delivered']} out_of_order={figures['out_of_order']}")


if __name__ == "__main__":
    main()
