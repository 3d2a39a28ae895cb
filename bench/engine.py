"""Engine benchmark: one workload, three ways, measured in one run.

    python -m bench.engine [--n 64] [--model smollm2] [--device auto] [--rate 8] [--seed 0]
    python -m bench.engine --remote http://127.0.0.1:8091/v1 --served-model ID [--dialect llamacpp]

(a) one `generate` call per request in arrival order (the classic notebook way);
(b) static batches of the engine's maximum batch size with `generate`, one setting per batch,
    padded and run until the longest request ends;
(c) the engine: continuous batching with every request's own settings.
Only requested tokens count. The last line is machine-readable.

With --remote, the same workload goes through the bot's remote path (bot/engine/remote: the fair
queue, at most --max-in-flight requests on the server, streaming over aiohttp) to any
OpenAI-compatible server, and (c) is printed for it: compare a server with the in-process engine.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import threading
import time
from dataclasses import dataclass

import torch

from bot.engine.metrics import percentile
from bot.engine.requests import GenerationRequest
from bot.engine.worker import Engine
from bot.limits import DEFAULT_MAX_BATCH
from models.base import Prompt
from models.compute_threads import in_passing_thread
from models.hf import HFStepModel, load_hf_model, pick_device
from models.params import GenerationParams

TOPICS = ["a lighthouse keeper", "the history of bread", "a storm at sea", "a city garden", "an old clock",
          "a night train", "the first snow", "a forgotten library", "a beekeeper", "a mountain village"]


@dataclass
class Job:
    arrival: float
    topic: str
    params: GenerationParams


def workload(n: int, rate: float, seed: int, model: str) -> list[Job]:
    """Poisson arrivals; mixed strategies and settings; lengths 32-256 with end-of-text ignored."""
    rng = random.Random(seed)
    jobs, clock = [], 0.0
    for i in range(n):
        clock += rng.expovariate(rate)
        length = rng.randint(32, 256)
        kind = rng.choice(["greedy", "sample", "top_k", "top_p"])
        params = GenerationParams(
            model=model, strategy=kind, temperature=rng.choice([0.6, 0.8, 1.0, 1.2]),
            top_k=rng.choice([20, 40, 50]), top_p=rng.choice([0.8, 0.9, 0.95]),
            no_repeat_ngram_size=rng.choice([0, 0, 3]), repetition_penalty=rng.choice([1.0, 1.0, 1.1]),
            max_new_tokens=length, min_new_tokens=min(length, 256), seed=seed * 1000 + i,
            stop_at_paragraph=False, ignore_eos=True)
        jobs.append(Job(clock, TOPICS[i % len(TOPICS)], params))
    return jobs


def generate_kwargs(params: GenerationParams, max_new: int) -> dict[str, object]:
    kwargs: dict[str, object] = dict(max_new_tokens=max_new, min_new_tokens=max_new,
                                     do_sample=params.do_sample,
                                     no_repeat_ngram_size=params.no_repeat_ngram_size,
                                     repetition_penalty=params.repetition_penalty)
    if params.do_sample:
        kwargs.update(temperature=params.temperature, top_k=params.effective_top_k or None,
                      top_p=params.effective_top_p)
    return kwargs


def run_sequential(model: HFStepModel, jobs: list[Job]) -> dict[str, float]:
    """(a): one generate per request, in arrival order, waiting for arrivals."""
    start = time.perf_counter()
    waits = []
    for job in jobs:
        while time.perf_counter() - start < job.arrival:
            time.sleep(0.001)
        waits.append(time.perf_counter() - start - job.arrival)
        ids = torch.tensor([model.encode_prompt(Prompt(job.topic), job.params.max_new_tokens)], device=model.device)
        model.model.generate(ids, attention_mask=torch.ones_like(ids), pad_token_id=model.pad_id,
                             **generate_kwargs(job.params, job.params.max_new_tokens))
    elapsed = time.perf_counter() - start
    return {"tokens_per_s": sum(j.params.max_new_tokens for j in jobs) / elapsed, "elapsed_s": elapsed,
            "start_wait_p50_s": percentile(waits, 0.5) or 0.0}


def run_static(model: HFStepModel, jobs: list[Job], batch_size: int) -> dict[str, float]:
    """(b): batches in arrival order, each with its first request's settings, run to the longest."""
    tokenizer = model.tokenizer
    tokenizer.padding_side = "left"
    start = time.perf_counter()
    for i in range(0, len(jobs), batch_size):
        batch = jobs[i:i + batch_size]
        while time.perf_counter() - start < batch[-1].arrival:
            time.sleep(0.001)
        prompts = [model.encode_prompt(Prompt(j.topic), j.params.max_new_tokens) for j in batch]
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[model.pad_id] * (width - len(p)) + p for p in prompts], device=model.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=model.device)
        longest = max(j.params.max_new_tokens for j in batch)
        model.model.generate(ids, attention_mask=mask, pad_token_id=model.pad_id,
                             **generate_kwargs(batch[0].params, longest))
    elapsed = time.perf_counter() - start
    return {"tokens_per_s": sum(j.params.max_new_tokens for j in jobs) / elapsed, "elapsed_s": elapsed}


async def run_engine(model: HFStepModel, jobs: list[Job], max_batch: int) -> dict[str, float]:
    """(c): the engine, with arrivals as the asyncio side would see them."""
    engine = Engine(lambda name: model, model.name, max_batch=max_batch, max_waiting=10_000,
                    max_per_user=10_000, device=str(model.device))
    return await drive(engine, model.name, jobs)


async def drive(engine: Engine, model_name: str, jobs: list[Job]) -> dict[str, float]:
    """Submit `jobs` at their arrival times and measure what a front would see."""
    lags: list[float] = []
    rss = RssSampler()
    ttfts: list[float] = []
    token_gaps: list[float] = []
    stop = asyncio.Event()

    async def watch_loop() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - before - 0.01)

    async def one(job: Job, start: float) -> None:
        await asyncio.sleep(max(0.0, start + job.arrival - time.perf_counter()))
        submitted = time.perf_counter()
        handle = engine.submit(GenerationRequest(Prompt(job.topic), job.params, fairness_key=job.topic))
        last = None
        async for event in handle.events():
            now = time.perf_counter()
            if event.kind == "text":
                if last is None:
                    ttfts.append(now - submitted)
                else:
                    token_gaps.append(now - last)
                last = now
            elif event.kind == "error":
                raise RuntimeError(event.text)

    async with engine:
        engine.preload(model_name)
        await asyncio.sleep(0.1)
        watcher = asyncio.create_task(watch_loop())
        rss.start()
        start = time.perf_counter()
        await asyncio.gather(*(one(job, start) for job in jobs))
        elapsed = time.perf_counter() - start
        stop.set()
        rss.stop()
        await watcher
        tokens = engine.metrics.tokens_total
    return {"tokens_per_s": sum(j.params.max_new_tokens for j in jobs) / elapsed, "elapsed_s": elapsed,
            "ttft_p50_s": percentile(ttfts, 0.5) or 0.0, "ttft_p99_s": percentile(ttfts, 0.99) or 0.0,
            "token_latency_p50_s": percentile(token_gaps, 0.5) or 0.0,
            "loop_lag_p99_ms": 1000 * (percentile(lags, 0.99) or 0.0), "peak_rss_mb": rss.peak_mb,
            "engine_tokens": float(tokens)}


class RssSampler:
    """Peak resident memory of this process while a phase runs (sampled every 50 ms)."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        page = resource.getpagesize()
        while not self._stop.is_set():
            with open("/proc/self/statm") as statm:
                self.peak_mb = max(self.peak_mb, int(statm.read().split()[1]) * page / 2**20)
            self._stop.wait(0.05)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=64, help="requests (default 64)")
    parser.add_argument("--model", default="smollm2", help="smollm2, a hub id or a folder")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default="auto")
    parser.add_argument("--rate", type=float, default=8.0, help="Poisson arrivals per second")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, help="the engine default (MAX_BATCH)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-sequential", action="store_true", help="skip (a), the slowest phase")
    parser.add_argument("--skip-static", action="store_true", help="skip (b)")
    parser.add_argument("--remote", help="base URL of an OpenAI-compatible server (http://host:port/v1)")
    parser.add_argument("--served-model", help="with --remote: the model id the server knows")
    parser.add_argument("--dialect", default="vllm", help="with --remote: vllm, sglang, llamacpp, ollama, openai")
    parser.add_argument("--api", default="chat", choices=["chat", "completion"])
    parser.add_argument("--max-in-flight", type=int, default=DEFAULT_MAX_BATCH, help="with --remote: per URL")
    args = parser.parse_args()
    if args.remote:
        from bench.remote import bench_remote

        bench_remote(args, workload(args.n, args.rate, args.seed, "remote"), drive)
        return
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    dtype = None if args.dtype == "auto" else getattr(torch, args.dtype)
    began = time.perf_counter()
    # Loaded and run on passing threads: the engine's worker holds the only OpenMP team (models/compute_threads.py).
    model = in_passing_thread(lambda: load_hf_model(args.model, device, dtype), "model-load")
    print(f"model {args.model} on {device} ({next(model.model.parameters()).dtype}) loaded in "
          f"{time.perf_counter() - began:.1f} s; torch threads {torch.get_num_threads()}")
    jobs = workload(args.n, args.rate, args.seed, model.name)
    print(f"workload: {args.n} requests, {sum(j.params.max_new_tokens for j in jobs)} tokens requested, "
          f"arrivals over {jobs[-1].arrival:.1f} s, max batch {args.max_batch}")
    engine = asyncio.run(run_engine(model, jobs, args.max_batch))
    print(f"(c) engine:     {engine['tokens_per_s']:8.1f} tok/s in {engine['elapsed_s']:.1f} s; "
          f"ttft p50 {engine['ttft_p50_s']:.2f} s p99 {engine['ttft_p99_s']:.2f} s; per-token p50 "
          f"{1000 * engine['token_latency_p50_s']:.0f} ms; loop lag p99 {engine['loop_lag_p99_ms']:.1f} ms; "
          f"peak RSS {engine['peak_rss_mb']:.0f} MiB")
    if args.skip_static:
        static = {"tokens_per_s": float("nan")}
    else:
        static = in_passing_thread(lambda: run_static(model, jobs, args.max_batch))
        print(f"(b) static:     {static['tokens_per_s']:8.1f} tok/s in {static['elapsed_s']:.1f} s")
    if args.skip_sequential:
        sequential = {"tokens_per_s": float("nan")}
    else:
        sequential = in_passing_thread(lambda: run_sequential(model, jobs))
        print(f"(a) sequential: {sequential['tokens_per_s']:8.1f} tok/s in {sequential['elapsed_s']:.1f} s")
    print(f"process peak RSS (all phases, incl. model): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"engine/sequential={engine['tokens_per_s'] / sequential['tokens_per_s']:.1f} "
          f"engine/static={engine['tokens_per_s'] / static['tokens_per_s']:.2f} "
          f"ttft_p50_s={engine['ttft_p50_s']:.2f} loop_lag_p99_ms={engine['loop_lag_p99_ms']:.0f}")


if __name__ == "__main__":
    main()
