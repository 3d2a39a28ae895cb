"""Linear layers in the formats a small-batch decode step reads fastest: dense, int8, int4.

At batch 1 a decode step is bound by reading the weights, so weights kept in fewer bits are
read faster: on 2 cores of an Intel Xeon with AVX512-BF16 (no AMX), bfloat16 activations, a
576 -> 3072 product took 263 us in bfloat16, 115 us with int8 weights and 114 us with int4
weights at batch 1; at batch 16 all three were equal and from batch 32 the dense one won (one
thread, runs/crossover.py in the issue-13 report). Only the weights are quantized, never the
activations (dynamic int8 of activations changed the text visibly in an earlier trial).

- int4 (`_weight_int4pack_mm_for_cpu`): groups of 32 inputs with a scale and a zero point each,
  as GGUF's Q4_0/Q4_1 blocks are, so a model that was 4-bit to begin with (the embedded SmolLM2)
  is held on its own grid: the 16 levels of each block are found again from its minimum and
  maximum (Q4_1 puts both on the grid).
- int8 (`_weight_int8pack_mm`): one scale per output channel, for GGUF's Q8_0 output layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

WeightFormat = Literal["dense", "int8", "int4"]
INT4_GROUP = 32  # inputs per scale and zero point: GGUF's block size
INT4_LEVELS = 15  # largest 4-bit level
INT4_MIDDLE = 8  # the kernel reads level q as (q - 8) * scale + zero
REQUIRED = {"int4": {"packed", "scales_zeros"}, "int8": {"weight", "scales"}, "dense": {"weight"}}


@dataclass
class PackedLinear:
    """y = x @ W.T for a weight W (N, K) kept in `format`; `tensors` hold what the kernel reads."""

    format: WeightFormat
    tensors: dict[str, torch.Tensor]

    @classmethod
    def of(cls, format: WeightFormat, tensors: dict[str, torch.Tensor]) -> PackedLinear:
        """A linear from stored tensors, refused when the format's tensors are not all there."""
        missing = REQUIRED[format] - tensors.keys()
        if missing:
            raise ValueError(f"a {format} linear needs {', '.join(sorted(missing))}")
        return cls(format, tensors)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # (B, K) -> (B, N)
        t = self.tensors  # scales are kept in the activations' dtype (see `pack`)
        if self.format == "int4":
            return torch.ops.aten._weight_int4pack_mm_for_cpu(x, t["packed"], INT4_GROUP, t["scales_zeros"])
        if self.format == "int8":
            return torch.ops.aten._weight_int8pack_mm(x, t["weight"], t["scales"])
        return F.linear(x, t["weight"])

    def dequantized(self) -> torch.Tensor:
        """The weight (N, K) in float32, as the kernel sees it (for checks and tests)."""
        t = self.tensors
        if self.format == "int8":
            return t["weight"].float() * t["scales"].float()[:, None]
        if self.format == "dense":
            return t["weight"].float()
        # The kernel itself, in float32, on the identity: each output column is a dequantized row.
        columns = t["scales_zeros"].shape[0] * INT4_GROUP
        identity = torch.eye(columns, dtype=torch.float32)
        return torch.ops.aten._weight_int4pack_mm_for_cpu(identity, t["packed"], INT4_GROUP,
                                                          t["scales_zeros"].float()).t()


def int4_supported(in_features: int) -> bool:
    """Whether this torch has the CPU int4 kernel and the layer splits into whole groups."""
    return hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu") and in_features % INT4_GROUP == 0


def pack(weight: torch.Tensor, format: WeightFormat, dtype: torch.dtype, keep_levels: bool = False) -> PackedLinear:
    """`weight` (N, K) in `format`; scales are kept in `dtype`, the activations' dtype."""
    if format == "int4":
        return _pack_int4(weight, dtype, keep_levels)
    if format == "int8":
        return _pack_int8(weight, dtype)
    return PackedLinear("dense", {"weight": weight.detach().to(dtype).contiguous()})


def _pack_int4(weight: torch.Tensor, dtype: torch.dtype, keep_levels: bool) -> PackedLinear:
    rows, cols = weight.shape
    groups = weight.detach().float().reshape(rows, cols // INT4_GROUP, INT4_GROUP)
    low, high = groups.amin(dim=-1, keepdim=True), groups.amax(dim=-1, keepdim=True)
    scale = ((high - low) / INT4_LEVELS).clamp(min=torch.finfo(torch.float32).tiny)
    levels = ((groups - low) / scale).round().clamp(0, INT4_LEVELS).to(torch.int32).reshape(rows, cols)
    zero = low + INT4_MIDDLE * scale  # level 8 is the kernel's zero point
    scales_zeros = torch.stack([scale.squeeze(-1), zero.squeeze(-1)], dim=-1)  # (N, K / G, 2)
    tensors = {
        "packed": torch.ops.aten._convert_weight_to_int4pack_for_cpu(levels, 1),
        "scales_zeros": scales_zeros.transpose(0, 1).contiguous().to(dtype),  # (K / G, N, 2)
    }
    if keep_levels:
        tensors["levels"] = levels.to(torch.uint8)
    return PackedLinear("int4", tensors)


def _pack_int8(weight: torch.Tensor, dtype: torch.dtype) -> PackedLinear:
    w = weight.detach().float()
    scales = (w.abs().amax(dim=1) / 127).clamp(min=torch.finfo(torch.float32).tiny)
    quantized = (w / scales[:, None]).round().clamp(-127, 127).to(torch.int8)
    return PackedLinear("int8", {"weight": quantized.contiguous(), "scales": scales.to(dtype)})
