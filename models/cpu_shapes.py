"""The matrix shapes a model meets on the CPU: few, and all met at start-up.

oneDNN, which runs PyTorch's bfloat16 (and float16) matrix products on the CPU, keeps the
kernels and repacked weights it builds for every shape it meets (M rows x K x N) and never
frees them: about 0.5 MB a shape. Decode steps meet M = 1..rows; a prefill of rows x tokens used
to meet a new M for nearly every prompt length, so resident memory climbed for as long as
prompts kept changing (the 30-minute soak's growth). So a CPU prefill runs M <=
SMALL_PREFILL_TOKENS as it is and pads anything larger to a multiple of PREFILL_PAD_TOKENS, at
most MAX_PREFILL_TOKENS a forward (prefill_groups): at most 64 + 30 values of M. warm_matrix_shapes
then meets every one of them at load, once per distinct weight shape (the caches key on shapes,
not on weights): memory is flat from the start instead of creeping up with traffic, and no
member's request waits for a kernel to be built.
"""

from __future__ import annotations

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


def matrix_rows(output_layer: bool) -> list[int]:
    """Every M a product may meet: decode steps and small prefills (1..64), padded prefills
    (96..1024); the output layer sees one row per sequence only (logits of the last token)."""
    small = list(range(1, SMALL_PREFILL_TOKENS + 1))
    if output_layer:
        return small
    return small + list(range(SMALL_PREFILL_TOKENS + PREFILL_PAD_TOKENS, MAX_PREFILL_TOKENS + 1, PREFILL_PAD_TOKENS))


@torch.inference_mode()
def warm_matrix_shapes(model: Any) -> int:
    """Run each distinct linear layer shape of `model` once at every M of matrix_rows; the number
    of products run. About 2 s (quiet) to 7 s (shared) and +270 MiB for SmolLM2 in bfloat16 on 2 Xeon cores."""
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
