"""`python -m bench.engine --remote URL --served-model ID`: the engine benchmark's workload
through the bot's remote path, against any OpenAI-compatible server.

The server generates; this process only queues, streams and delivers, so the figures are the
server's as the bot's members would see them (time to first token includes the bot's queue).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
from collections.abc import Awaitable, Callable
from typing import Any

from bot.engine.remote.spec import DIALECTS, RemoteModel
from bot.engine.worker import Engine


def bench_remote(args: argparse.Namespace, jobs: list[Any],
                 drive: Callable[[Engine, str, list[Any]], Awaitable[dict[str, float]]]) -> None:
    """Run `jobs` through a remote model at args.remote and print the engine benchmark's (c) line."""
    if not args.served_model:
        raise SystemExit("--remote needs --served-model (the model id the server knows)")
    if args.dialect not in DIALECTS:
        raise SystemExit(f"--dialect must be one of {', '.join(DIALECTS)}")
    model = RemoteModel(name="remote", urls=(args.remote.rstrip("/"),), served_model=args.served_model,
                        dialect=args.dialect, api=args.api, max_in_flight=args.max_in_flight,
                        first_token_timeout_s=600.0, stall_timeout_s=120.0)

    def no_local(name: str) -> Any:
        raise FileNotFoundError(name)

    engine = Engine(no_local, "remote", max_waiting=10_000, max_per_user=10_000, remote=[model])
    requested = sum(job.params.max_new_tokens for job in jobs)
    print(f"remote {args.remote} serving {args.served_model} ({args.dialect}, {args.api} API), "
          f"at most {args.max_in_flight} in flight; client on {platform.processor() or platform.machine()}")
    print(f"workload: {len(jobs)} requests, {requested} tokens requested, arrivals over {jobs[-1].arrival:.1f} s")
    figures = asyncio.run(drive(engine, "remote", jobs))
    streamed = figures["engine_tokens"]  # chunks: one token each on these servers
    rate = streamed / figures["elapsed_s"]  # a server that ignores ignore_eos writes fewer than requested
    print(f"(c) remote:     {rate:8.1f} tok/s streamed ({streamed:.0f} of {requested} tokens requested) in "
          f"{figures['elapsed_s']:.1f} s; ttft p50 "
          f"{figures['ttft_p50_s']:.2f} s p99 {figures['ttft_p99_s']:.2f} s; per-token p50 "
          f"{1000 * figures['token_latency_p50_s']:.0f} ms; loop lag p99 {figures['loop_lag_p99_ms']:.1f} ms; "
          f"client peak RSS {figures['peak_rss_mb']:.0f} MiB")
    print(f"remote_tok_s={rate:.1f} ttft_p50_s={figures['ttft_p50_s']:.2f} "
          f"loop_lag_p99_ms={figures['loop_lag_p99_ms']:.0f}")
