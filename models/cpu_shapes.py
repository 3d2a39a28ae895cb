"""The matrix shapes a model meets on the CPU: few, and all met at start-up.

oneDNN, which runs PyTorch's bfloat16 (and float16) matrix products on the CPU, keeps the
kernels and repacked weights it builds for every shape it meets (M rows x K x N) and never
frees them: about 0.5 MB a shape. Decode steps meet M = 1..rows; a prefill of rows x tokens used
to meet a new M for nearly every prompt length, so resident memory climbed for as long as
prompts kept changing (the 30-minute soak's growth). So a CPU prefill runs M <=
SMALL_PREFILL_TOKENS as it is and pads anything larger to a multiple of PREFILL_PAD_TOKENS, at
most MAX_PREFILL_TOKENS a forward (prefill_groups), and every product runs on a grid of M
(below). warm_matrix_shapes then meets every one of them at load, once per distinct weight shape (the caches key on shapes,
not on weights): memory is flat from the start instead of creeping up with traffic, and no
member's request waits for a kernel to be built.

Products themselves run on a grid of M (`grid_rows`: 1-8, then multiples of 8 to 64, then of
64): `run_products_on_grid` pads a linear layer's input with zero rows up to the next grid value
and cuts them off its output. Decode batches of 9-64 rows and small prefills then meet 15 values
of M instead of 64, and padded prefills 15 instead of 30: 135 shapes for SmolLM2 instead of
440, and the caches hold a third of what they held.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

import torch

log = logging.getLogger(__name__)

SMALL_PREFILL_TOKENS = 64
PREFILL_PAD_TOKENS = 32
MAX_PREFILL_TOKENS = 1024


def prefill_groups(lengths: list[int]) -> list[tuple[int, int, int]]:
    """Consecutive rows as (start, end, padded length) groups: rows x length is at most
    SMALL_PREFILL_TOKENS as it is; otherwise the rows share one length padded to a multiple of
    PREFILL_PAD_TOKENS (no row is padded past its own multiple) and rows x length is at most
    MAX_PREFILL_TOKENS (one row alone may need more)."""
    def fits(rows: int, longest: int, shortest: int) -> bool:
        return rows * longest <= SMALL_PREFILL_TOKENS or (
            padded(shortest) == padded(longest) and rows * padded(longest) <= MAX_PREFILL_TOKENS)

    groups: list[tuple[int, int, int]] = []
    start = 0
    while start < len(lengths):
        end = start + 1
        while end < len(lengths) and fits(end + 1 - start, max(lengths[start:end + 1]), min(lengths[start:end + 1])):
            end += 1
        rows, longest = end - start, max(lengths[start:end])
        groups.append((start, end, longest if rows * longest <= SMALL_PREFILL_TOKENS else padded(longest)))
        start = end
    return groups


def padded(length: int) -> int:
    """`length` rounded up to a multiple of PREFILL_PAD_TOKENS."""
    return -(-length // PREFILL_PAD_TOKENS) * PREFILL_PAD_TOKENS


GRID_FINE_ROWS = 8  # up to here every M is its own shape (a member alone, a few together)
GRID_SMALL_STEP = 8  # then multiples of this up to SMALL_PREFILL_TOKENS
GRID_LARGE_STEP = 64  # then multiples of this


def grid_rows(rows: int) -> int:
    """The smallest M on the grid that holds `rows` rows."""
    if rows <= GRID_FINE_ROWS:
        return rows
    step = GRID_SMALL_STEP if rows <= SMALL_PREFILL_TOKENS else GRID_LARGE_STEP
    return -(-rows // step) * step


def matrix_rows(output_layer: bool) -> list[int]:
    """Every M a product may meet: decode steps and small prefills (grid values up to 64),
    padded prefills (grid values up to 1024); the output layer sees one row per sequence only
    (logits of the last token)."""
    small = sorted({grid_rows(rows) for rows in range(1, SMALL_PREFILL_TOKENS + 1)})
    if output_layer:
        return small
    return small + list(range(SMALL_PREFILL_TOKENS + GRID_LARGE_STEP, MAX_PREFILL_TOKENS + 1, GRID_LARGE_STEP))


def _grid_forward(forward: Any, x: torch.Tensor) -> torch.Tensor:
    rows = x.numel() // x.shape[-1]
    target = grid_rows(rows)
    if target == rows:
        return forward(x)
    flat = x.reshape(rows, x.shape[-1])
    out = forward(torch.cat([flat, flat.new_zeros(target - rows, flat.shape[1])]))
    return out[:rows].view(*x.shape[:-1], out.shape[-1])  # the first rows: a view, no copy


def run_products_on_grid(model: Any) -> None:
    """Every linear layer of `model` multiplies M = grid_rows(rows) rows: its input padded with
    zero rows, which its output drops (each row's result is its own)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and not isinstance(module.forward, functools.partial):
            module.forward = functools.partial(_grid_forward, module.forward)


@torch.inference_mode()
def warm_matrix_shapes(model: Any) -> int:
    """Run each distinct linear layer shape of `model` once at every M of matrix_rows; the number
    of products run. For SmolLM2 in bfloat16 on 2 Xeon cores: 440 products, about 2 s (quiet) and
    +270 MiB before the grid; 135 products with it."""
    began = time.perf_counter()
    output = model.get_output_embeddings()
    seen: dict[tuple[int, int, bool], torch.nn.Linear] = {}
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            seen.setdefault((module.in_features, module.out_features, module is output), module)
    runs = 0
    for (in_features, _, is_output), module in seen.items():
        weight = module.weight
        for rows in matrix_rows(is_output):
            module(torch.zeros(rows, in_features, dtype=weight.dtype, device=weight.device))
            runs += 1
    log.info("met the %d matrix shapes this model can meet in %.1f s (the CPU kernels' caches are full "
             "from the start: memory stays flat)", runs, time.perf_counter() - began)
    return runs
