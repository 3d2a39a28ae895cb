"""Time one decode step alone, per path and thread count, without the engine around it.

    python -m bench.decode_step [--paths native,auto,off] [--threads 1,2] [--rows 1] [--steps 64]

Prefills one 32-token prompt per row, then times `--steps` decode steps of HFStepModel.decode
(the path's step plus the mask and positions around it), greedy, and prints ms a step and
tokens/s per path and thread count, measured in one run. Paths: native (8-bit activations where
the processor has AVX512-VNNI), native-float32, auto, off, dense, int8, int4.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from bench.sweep import model_with_paths
from models.hf import HFStepModel


def time_steps(model: HFStepModel, rows: int, steps: int) -> float:
    """Seconds a decode step, after prefilling `rows` prompts of 32 tokens."""
    batch = model.new_batch()
    prompts = [[(17 * i + 5 * r) % 1000 + 10 for i in range(32)] for r in range(rows)]
    logits = model.prefill(batch, prompts)
    for _ in range(4):  # warm-up: first calls allocate
        logits = model.decode(batch, logits.argmax(dim=-1))
    started = time.perf_counter()
    for _ in range(steps):
        logits = model.decode(batch, logits.argmax(dim=-1))
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", default="native,auto,off")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rows", default="1")
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--model", default="smollm2")
    args = parser.parse_args()
    paths = args.paths.split(",")
    model, steps = model_with_paths(args.model, torch.device("cpu"), paths)
    load = os.getloadavg()
    print(f"model {args.model} ({model.model.dtype}), cpu {torch.backends.cpu.get_cpu_capability()}, "
          f"load average {load[0]:.2f} {load[1]:.2f}")
    for rows in (int(r) for r in args.rows.split(",")):
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            for path in paths:
                model.small_step, model.small_batch = steps[path]
                seconds = time_steps(model, rows, args.steps)
                print(f"{path:>8} rows {rows} threads {threads}: {1000 * seconds:6.2f} ms a step, "
                      f"{rows / seconds:6.1f} tok/s", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
