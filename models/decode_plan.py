"""Which decode path a model takes at which batch size, chosen once at start-up per processor.

Small batches (one member writing alone is the usual case) are bound by reading the weights,
large ones by arithmetic: a Llama on the CPU decodes batches up to `DecodePlan.max_batch` rows
with the hand-trimmed step (models/llama_step.py), its weights packed in as few bits as keep
the model what it is (int4 for a model that was 4-bit in its GGUF file, int8 for an 8-bit output
layer, else its own dtype), and larger batches with transformers' forward in the model's dtype.
DECODE_PATH=native asks for the compiled step instead (models/native_step.py: Q4_1 and Q8_0
blocks, one C++ call a step): with 8-bit activations as llama.cpp takes them where the processor
has AVX512-VNNI (up to NATIVE_MAX_BATCH_INT8 rows), else float32 ones (up to NATIVE_MAX_BATCH);
"native-float32" keeps float32 everywhere. Where it cannot be compiled the torch step serves,
for its own batch sizes. Unset (DEFAULT), the compiled step serves models whose blocks it holds
exactly (the embedded SmolLM2) and the rest keep transformers' forward. The GPU keeps transformers' forward throughout. Packed weights
(and the compiled step) are cached on disk, so the second start does not pack them again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from models import native_step
from models.gguf_tensor_types import gguf_tensor_types
from models.llama_step import LlamaDecodeStep, supports
from models.native_step import NativeDecodeStep, supported_shapes
from models.weight_formats import WeightFormat, int4_supported

log = logging.getLogger(__name__)

# Batch sizes the trimmed step serves. On 2 cores of an Intel Xeon with AVX512-BF16 (no AMX),
# bfloat16, int4 and int8 products were 2.3x faster than bfloat16 at batch 1, 1.4x at 8, equal at
# 16 and slower from 32 (runs/crossover.py, issue 13). AMX multiplies bfloat16 far faster, so
# there the dense products catch up sooner (an estimate: no AMX machine was at hand).
SMALL_BATCH = {"AVX512": 8, "AVX2": 8}
SMALL_BATCH_AMX = 4
NATIVE = "native"  # DECODE_PATH value for the compiled step (8-bit activations where VNNI has them)
NATIVE_FLOAT32 = "native-float32"  # the compiled step with float32 activations on every processor
DEFAULT = "default"  # DECODE_PATH unset: the compiled step where it is exact, else transformers' forward
# Rows the compiled step serves. On the Xeon above it beat bfloat16 forwards up to 48 rows (64
# rows: 197 against 185 ms a step; 32: 106 against 117; 8: 33 against 56). AMX and AVX2 are
# estimates (no such machine was at hand): AMX multiplies bfloat16 far faster, and AVX2's
# kernels are half as wide against float32 products in MKL.
NATIVE_MAX_BATCH = {"AVX512": 48, "AVX2": 8}
NATIVE_MAX_BATCH_AMX = 4
# With 8-bit activations (AVX512-VNNI) the compiled step beat bfloat16 forwards at every size up
# to its limit on the same Xeon: 64 rows 135 against 188 ms a step, 48: 97 against 160.
NATIVE_MAX_BATCH_INT8 = 64
GGUF_FORMATS = {"Q4_0": "int4", "Q4_1": "int4", "Q8_0": "int8"}  # block formats the packs hold on their grid


@dataclass(frozen=True)
class DecodePlan:
    """Batches of 1..max_batch rows take the trimmed step with these weight formats."""

    layers: WeightFormat
    output: WeightFormat
    max_batch: int
    processor: str
    native: bool = False  # the compiled step (models/native_step.py) rather than the torch one
    activations: str = "float32"  # the compiled step's: "int8" asks for 8-bit ones where VNNI has them

    def describe(self, dtype: torch.dtype) -> str:
        """The one log line that says what was chosen."""
        name = str(dtype).removeprefix("torch.")
        if self.native:
            return (f"decode path on {self.processor}: batches of 1-{self.max_batch} rows take the compiled step "
                    f"(Q4_1 decoder weights, Q8_0 output layer, {self.activations} activations); larger ones "
                    f"transformers' forward in {name}")
        return (f"decode path on {self.processor}: batches of 1-{self.max_batch} rows take the trimmed step "
                f"(decoder weights {self.layers if self.layers != 'dense' else name}, output layer "
                f"{self.output if self.output != 'dense' else name}); larger ones transformers' forward in {name}")


def cpu_processor() -> tuple[str, bool]:
    """torch's vector capability here (AVX512, AVX2, DEFAULT...) and whether AMX tiles exist."""
    capability = torch.backends.cpu.get_cpu_capability()
    amx = bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
    return capability, amx


def choose_plan(model: Any, device: torch.device, gguf_path: Path | None,
                requested: str = "auto") -> DecodePlan | None:
    """The plan for `model`, or None where transformers' forward serves every batch (the GPU, a
    model the trimmed step does not cover, an unknown processor, or `requested` "off").
    "native" (or "native-float32") asks for the compiled step; `build_step` falls back to the
    "auto" plan's torch step when it cannot be compiled. DEFAULT is "native" where the compiled
    step holds the model's weights exactly (native_holds_exactly), else "off"."""
    if requested == DEFAULT:
        requested = NATIVE if native_holds_exactly(gguf_path) else "off"
    if requested == "off" or device.type != "cpu" or not supports(model):
        return None
    capability, amx = cpu_processor()
    if capability not in SMALL_BATCH:
        return None
    processor = f"{capability}{' + AMX' if amx else ''}"
    max_batch = SMALL_BATCH_AMX if amx else SMALL_BATCH[capability]
    layers, output = source_formats(gguf_path)
    if model.get_input_embeddings().weight.dtype != torch.bfloat16:
        # The packed kernels are fast for bfloat16 activations only: with float32 ones a 576 -> 3072
        # product took 1,316 us as int8 and 3,632 us as int4 against 259 us dense (same machine).
        layers = output = "dense"
    if requested in ("dense", "int8", "int4"):  # a benchmark's A/B: every product in one format
        layers = output = requested
    config = model.config
    if "int4" in (layers, output) and not (int4_supported(config.hidden_size)
                                           and int4_supported(config.intermediate_size)):
        layers = "dense" if layers == "int4" else layers
        output = "int8" if output == "int4" else output
    native = (requested in (NATIVE, NATIVE_FLOAT32) and supported_shapes(model)
              # the C++ reads float32 or bfloat16 caches only
              and model.get_input_embeddings().weight.dtype in (torch.float32, torch.bfloat16))
    if native:
        max_batch = min(NATIVE_MAX_BATCH_AMX if amx else NATIVE_MAX_BATCH.get(capability, 8),
                        NativeDecodeStep.max_rows)
    activations = "int8" if native and requested == NATIVE else "float32"
    return DecodePlan(layers, output, max_batch, processor, native, activations)  # type: ignore[arg-type]


def as_built(plan: DecodePlan, step: Any) -> DecodePlan:
    """`plan` as the step built from it serves: the compiled step's activations are 8-bit only
    where the processor has VNNI, and then it serves up to NATIVE_MAX_BATCH_INT8 rows."""
    if not plan.native or not isinstance(step, NativeDecodeStep):
        return plan
    if step.int8:
        return replace(plan, activations="int8", max_batch=min(NATIVE_MAX_BATCH_INT8, step.max_rows))
    return replace(plan, activations="float32")


def gguf_block_types(gguf_path: Path | None) -> tuple[str, str]:
    """The GGUF block type of the file's decoder products (one type, else "mixed") and of its
    output layer ("Q4_1", "Q8_0", "F32"...); ("F32", "F32") without a GGUF file."""
    if gguf_path is None:
        return "F32", "F32"
    types = gguf_tensor_types(gguf_path)
    decoder = {kind for name, kind in types.items() if name.startswith("blk.") and not name.endswith("norm.weight")}
    output = types.get("output.weight", types.get("token_embd.weight", "F32"))
    return (decoder.pop() if len(decoder) == 1 else "mixed"), output


def source_formats(gguf_path: Path | None) -> tuple[WeightFormat, WeightFormat]:
    """The packs that hold a GGUF file's own blocks (decoder products, output layer); "dense"
    for a float checkpoint, whose weights no pack would keep exactly."""
    layers, output = gguf_block_types(gguf_path)
    return GGUF_FORMATS.get(layers, "dense"), GGUF_FORMATS.get(output, "dense")  # type: ignore[return-value]


def native_holds_exactly(gguf_path: Path | None) -> bool:
    """Whether the compiled step's Q4_1 and Q8_0 blocks are the model's own weights: a GGUF file
    with Q4_1 decoder products and a Q8_0 output layer (the embedded SmolLM2). Elsewhere it
    would round the weights onto those grids, which only an owner's DECODE_PATH=native asks for."""
    return gguf_block_types(gguf_path) == ("Q4_1", "Q8_0")


def build_step(model: Any, plan: DecodePlan, gguf_path: Path | None,
               cache_dir: Path | None) -> LlamaDecodeStep | NativeDecodeStep:
    """The trimmed step with packed weights, read from `cache_dir` when packed before; the
    compiled one when `plan.native` and it builds (else one warning and the torch step)."""
    if plan.native:
        try:
            return build_native(model, plan, gguf_path, cache_dir or default_cache_dir())
        except Exception as error:  # no compiler, no ninja, a failed build: the torch step still works
            log.warning("the compiled decode step is not available (%s); using the torch step",
                        str(error).splitlines()[0] if str(error) else type(error).__name__)
    if plan.layers == plan.output == "dense":  # fused copies of the model's weights: nothing to cache
        return LlamaDecodeStep.build(model, "dense", "dense")
    cached = _cache_file(cache_dir, gguf_path, plan, model) if cache_dir is not None and gguf_path else None
    if cached is not None and cached.is_file():
        try:
            stored = torch.load(cached, mmap=True, weights_only=True)
            return LlamaDecodeStep.from_tensors(model, stored, plan.layers, plan.output)
        except Exception as error:  # a damaged or foreign file: pack again and overwrite it
            log.warning("packed weights in %s could not be read (%s); packing again", cached, error)
    step = LlamaDecodeStep.build(model, plan.layers, plan.output)
    if cached is not None:
        _save_atomically(step.tensors(), cached)
    return step


def build_native(model: Any, plan: DecodePlan, gguf_path: Path | None, cache_dir: Path) -> NativeDecodeStep:
    """The compiled step; its blocks read from `cache_dir` when packed before. 8-bit activations
    where the plan asks for them and the processor multiplies them with VNNI (else float32)."""
    kernels = native_step.load_kernels(cache_dir)
    step = _native_blocks(model, plan, gguf_path, cache_dir, kernels)
    step.int8 = plan.activations == "int8" and bool(kernels.vnni())
    return step


def _native_blocks(model: Any, plan: DecodePlan, gguf_path: Path | None, cache_dir: Path,
                   kernels: Any) -> NativeDecodeStep:
    cached = _cache_file(cache_dir, gguf_path, plan, model) if gguf_path else None
    if cached is not None and cached.is_file():
        try:
            return NativeDecodeStep.from_tensors(model, kernels, torch.load(cached, mmap=True, weights_only=True))
        except Exception as error:  # a damaged or foreign file: pack again and overwrite it
            log.warning("packed weights in %s could not be read (%s); packing again", cached, error)
    step = NativeDecodeStep.build(model, kernels, _file_weights(model, gguf_path))
    if cached is not None:
        _save_atomically(step.tensors(), cached)
    return step


def _file_weights(model: Any, gguf_path: Path | None) -> dict[str, torch.Tensor] | None:
    """The GGUF file's own float32 weights (a bfloat16 model rounded its blocks' scales), or None
    where there is no file or it cannot be read (the loaded weights are packed instead)."""
    if gguf_path is None:
        return None
    try:
        return native_step.gguf_weights(model, gguf_path)
    except Exception as error:
        log.warning("could not read the blocks of %s (%s); packing the loaded weights", gguf_path.name, error)
        return None


def _cache_file(cache_dir: Path, gguf_path: Path, plan: DecodePlan, model: Any) -> Path:
    stat = gguf_path.stat()
    formats = ["q4_1", "q8_0", native_step.PACK_VERSION] if plan.native else [plan.layers, plan.output]
    key = json.dumps([str(gguf_path.resolve()), stat.st_size, stat.st_mtime_ns, *formats,
                      str(model.get_input_embeddings().weight.dtype), torch.__version__])
    return cache_dir / f"{gguf_path.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"


def _save_atomically(tensors: dict[str, torch.Tensor], path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".partial-{os.getpid()}")
        torch.save(tensors, partial)
        os.replace(partial, path)
    except OSError as error:  # a read-only cache only costs the next start its packing time
        log.warning("could not cache packed weights in %s: %s", path.parent, error)


def default_cache_dir() -> Path:
    """STORYBOT_CACHE_DIR, else ~/.cache/storybot (XDG_CACHE_HOME respected)."""
    explicit = os.environ.get("STORYBOT_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "storybot"
