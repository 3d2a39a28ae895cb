"""Concurrency sweep: 1, 4, 16 and 64 requests in flight, the engine (and a remote server).

    python -m bench.sweep [--levels 1,4,16,64] [--tokens 128] [--rounds 2] [--paths auto,off]
                          [--remote http://127.0.0.1:8091] [--model smollm2]

Closed loop: at each level N, N requests are in flight until N x rounds have finished (at least
4), each writing exactly `--tokens` tokens (end of text ignored) with mixed settings, as
bench.engine's workload has them. Every line gives tokens/s, TTFT p50 and the per-token latency
p50 (gap between streamed pieces). `--paths` runs the engine once per decode path on the same
loaded model, interleaved level by level, so their ratio is measured in one run: "auto" is the
path models.decode_plan chose for this processor, "native" the compiled step
(models/native_step.py), "off" transformers' forward at every batch size. `--remote URL` drives an OpenAI-compatible server (llama.cpp's llama-server, vLLM) with the
same prompts over /v1/chat/completions, streaming; its server-side settings are its own.
The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import torch

from bench.engine import workload
from bot.engine.metrics import percentile
from bot.engine.requests import GenerationRequest
from bot.engine.worker import Engine
from models.base import Prompt
from models.compute_threads import in_passing_thread
from models.decode_plan import default_cache_dir
from models.hf import HFStepModel, load_hf_model, pick_device
from models.params import GenerationParams
from models.prompts import chat_messages

MIN_REQUESTS = 4


@dataclass
class Level:
    """What one concurrency level measured."""

    tokens_per_s: float
    ttft_p50_s: float
    token_latency_p50_s: float

    def line(self, label: str, in_flight: int) -> str:
        return (f"{label:>12} {in_flight:3d} in flight: {self.tokens_per_s:7.1f} tok/s, ttft p50 "
                f"{self.ttft_p50_s:.3f} s, per-token p50 {1000 * self.token_latency_p50_s:.1f} ms")


class Timings:
    """First-piece and between-piece times of the streams of one level."""

    def __init__(self) -> None:
        self.ttft: list[float] = []
        self.gaps: list[float] = []

    def stream(self) -> StreamClock:
        return StreamClock(self)

    def level(self, tokens: int, elapsed: float) -> Level:
        return Level(tokens / elapsed, percentile(self.ttft, 0.5) or 0.0, percentile(self.gaps, 0.5) or 0.0)


class StreamClock:
    """Times one stream: call `piece()` when text arrives."""

    def __init__(self, timings: Timings) -> None:
        self.timings = timings
        self.started = time.perf_counter()
        self.last: float | None = None

    def piece(self) -> None:
        now = time.perf_counter()
        if self.last is None:
            self.timings.ttft.append(now - self.started)
        else:
            self.timings.gaps.append(now - self.last)
        self.last = now


def jobs_for(in_flight: int, rounds: int, tokens: int, model_name: str) -> list[tuple[str, GenerationParams]]:
    count = max(MIN_REQUESTS, in_flight * rounds)
    return [(job.topic, job.params.replace(max_new_tokens=tokens, min_new_tokens=tokens))
            for job in workload(count, 1.0, in_flight, model_name)]


async def closed_loop(jobs: list[tuple[str, GenerationParams]], in_flight: int, run_one: object) -> Level:
    """Keep `in_flight` of `jobs` running until all are done."""
    timings = Timings()
    pending = list(jobs)

    async def worker() -> None:
        while pending:
            topic, params = pending.pop(0)
            await run_one(topic, params, timings.stream())  # type: ignore[operator]

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return timings.level(sum(p.max_new_tokens for _, p in jobs), time.perf_counter() - started)


async def engine_level(model: HFStepModel, jobs: list[tuple[str, GenerationParams]], in_flight: int) -> Level:
    engine = Engine(lambda name: model, model.name, max_batch=max(64, in_flight), max_waiting=10_000,
                    max_per_user=10_000, device=str(model.device))

    async def one(topic: str, params: GenerationParams, clock: StreamClock) -> None:
        handle = engine.submit(GenerationRequest(Prompt(topic), params, fairness_key=str(id(clock))))
        async for event in handle.events():
            if event.kind == "text":
                clock.piece()
            elif event.kind == "error":
                raise RuntimeError(event.text)

    async with engine:
        engine.preload(model.name)
        await asyncio.sleep(0.1)
        return await closed_loop(jobs, in_flight, one)


async def remote_level(url: str, jobs: list[tuple[str, GenerationParams]], in_flight: int) -> Level:
    import aiohttp  # discord.py's HTTP client, already installed

    # A fresh connection per request: llama-server closes idle keep-alive connections, and a
    # reused one then fails with "Server disconnected" (loopback connects cost nothing here).
    async with aiohttp.ClientSession(base_url=url, connector=aiohttp.TCPConnector(force_close=True)) as session:
        async def one(topic: str, params: GenerationParams, clock: StreamClock) -> None:
            body = {"messages": chat_messages(topic, [], None), "max_tokens": params.max_new_tokens, "stream": True,
                    "temperature": params.temperature if params.do_sample else 0.0, "top_p": params.top_p,
                    "top_k": params.top_k, "seed": params.seed, "ignore_eos": True}
            async with session.post("/v1/chat/completions", json=body) as response:
                response.raise_for_status()
                async for raw in response.content:
                    line = raw.decode().strip()
                    if not line.startswith("data:") or line == "data: [DONE]":
                        continue
                    delta = json.loads(line[5:])["choices"][0].get("delta", {})
                    if delta.get("content"):
                        clock.piece()

        return await closed_loop(jobs, in_flight, one)


def model_with_paths(spec: str, device: torch.device, paths: list[str]) -> tuple[HFStepModel, dict[str, Any]]:
    """`spec` loaded once, with each decode path's (small_step, small_batch) built to switch between.
    Loaded on a passing thread, so the engine's worker holds the process's only OpenMP team
    (models/compute_threads.py)."""

    def load() -> tuple[HFStepModel, dict[str, Any]]:
        model = load_hf_model(spec, device, decode=paths[0])
        steps = {}
        for path in paths:
            model.choose_decode(path, default_cache_dir())
            steps[path] = (model.small_step, model.small_batch)
        return model, steps

    return in_passing_thread(load, "model-load")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,4,16,64", help="requests in flight, comma-separated")
    parser.add_argument("--tokens", type=int, default=128, help="tokens each request writes")
    parser.add_argument("--rounds", type=int, default=2, help="requests per level = in flight x rounds (>= 4)")
    parser.add_argument("--paths", default="auto", help="decode paths to compare: native, native-float32, auto, off, dense, int8, int4")
    parser.add_argument("--remote", default=None, help="an OpenAI-compatible server's base URL")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    paths = args.paths.split(",")
    device = pick_device(args.device)
    model, steps = model_with_paths(args.model, device, paths)
    load = os.getloadavg()
    print(f"model {args.model} on {device} ({next(model.model.parameters()).dtype}), torch threads "
          f"{torch.get_num_threads()}, cpu {torch.backends.cpu.get_cpu_capability()}, load average "
          f"{load[0]:.2f} {load[1]:.2f}; {args.tokens} tokens a request")
    results: dict[str, dict[int, Level]] = {path: {} for path in paths}
    for in_flight in levels:
        jobs = jobs_for(in_flight, args.rounds, args.tokens, model.name)
        for path in paths:
            model.small_step, model.small_batch = steps[path]
            results[path][in_flight] = asyncio.run(engine_level(model, jobs, in_flight))
            print(results[path][in_flight].line(f"engine {path}", in_flight), flush=True)
        if args.remote:
            results.setdefault("remote", {})[in_flight] = asyncio.run(remote_level(args.remote, jobs, in_flight))
            print(results["remote"][in_flight].line("remote", in_flight), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(" ".join(f"{path}_{n}={level.tokens_per_s:.1f}" for path, by_level in results.items()
                   for n, level in by_level.items()))


if __name__ == "__main__":
    main()
