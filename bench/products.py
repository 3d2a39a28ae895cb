"""One linear layer's product in each weight format, by batch size: where the small-batch path pays.

    python -m bench.products [--threads 1] [--shape 3072x576] [--rows 1,2,4,8,16,32,64]

Times y = x @ W.T for W (N, K) in float32, bfloat16 and as weight-only int8 and int4 packs
(models/weight_formats.py), activations in bfloat16 for the packs, median of 30 calls each,
in microseconds. The crossover it shows sets models.decode_plan.SMALL_BATCH for a processor.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from models.weight_formats import pack


def median_us(call: Callable[[], object], repeats: int = 30) -> float:
    for _ in range(3):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shape", default="3072x576", help="N x K (default: SmolLM2's gate and up together)")
    parser.add_argument("--rows", default="1,2,4,8,16,32,64")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n, k = (int(x) for x in args.shape.split("x"))
    weight = torch.randn(n, k) * 0.02
    dense = {"float32": weight, "bfloat16": weight.bfloat16()}
    packed = {f: pack(weight, f, torch.bfloat16) for f in ("int8", "int4")}  # type: ignore[arg-type]
    print(f"{n}x{k}, {args.threads} thread(s), cpu {torch.backends.cpu.get_cpu_capability()}, "
          f"load average {os.getloadavg()[0]:.2f}; microseconds, median of 30")
    print(f"{'rows':>5} {'float32':>8} {'bfloat16':>8} {'int8':>8} {'int4':>8}")
    for rows in (int(r) for r in args.rows.split(",")):
        inputs = {dtype: torch.randn(rows, k).to(dtype) for dtype in (torch.float32, torch.bfloat16)}
        figures = [median_us(lambda w=w, x=inputs[w.dtype]: F.linear(x, w)) for w in dense.values()]
        figures += [median_us(lambda p=p, x=inputs[torch.bfloat16]: p(x)) for p in packed.values()]
        print(f"{rows:5d} " + " ".join(f"{f:8.0f}" for f in figures), flush=True)


if __name__ == "__main__":
    main()
