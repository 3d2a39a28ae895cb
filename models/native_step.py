"""A compiled decode step for Llama-architecture models (SmolLM2) at small batches on the CPU.

The trimmed torch step (models/llama_step.py) still dispatches ~20 operations per layer from
Python; this one runs a whole step (every layer, attention over the batch's KV cache, the output
layer) in one C++ call (models/native/decode_step.cpp). Decoder weights are held as GGUF Q4_1
blocks (32 weights: a scale, a minimum and 4-bit levels), the output layer as Q8_0 blocks (a scale
and 8-bit levels); activations in float32, or (`int8`) cut into blocks of 32 with a scale and
8-bit levels as llama.cpp does, so that AVX512-VNNI multiplies them in integers (1.5x faster a
step alone). It reads and writes the same HeadroomLayer cache as
transformers' forward (models/kv_cache.py), so a batch can change path between any two steps.

The C++ is compiled at first use with torch.utils.cpp_extension into a cache folder on disk (the
next start loads it); its kernels pick AVX-512, AVX2 or plain loops at run time, so the compiled
file does not depend on the machine that built it. Without a compiler `load_kernels` raises and
the caller keeps the torch step.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

log = logging.getLogger(__name__)

SOURCE_DIR = Path(__file__).parent / "native"
SOURCE = SOURCE_DIR / "decode_step.cpp"  # includes the headers beside it
BLOCK = 32  # GGUF's block of weights that share a scale (and, in Q4_1, a minimum)
MAX_ROWS = 64  # the C++ step's limit (MAX_ROWS there)
MAX_WIDTH = 32_768  # the widest product input the C++ takes (MAX_BLOCKS blocks of 32)
PACK_VERSION = "gguf-exact-2"  # part of the packed cache's key: a change of packing packs again
LAYER_TENSORS = 14  # per layer: 2 norms and 4 products of 3 tensors each
_loaded: dict[Path, ModuleType] = {}


def kernels_dir(cache_dir: Path) -> Path:
    """Where the compiled step lives: one folder per torch and Python version (their ABIs)."""
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    return cache_dir / "native" / f"torch-{torch.__version__.replace('+', '-')}-{python}"


def source_digest() -> str:
    """A hash of the C++ source and its headers: torch watches only the .cpp for changes, so the
    module's name carries this and an edited header builds a new module."""
    digest = hashlib.sha256()
    for path in sorted(SOURCE_DIR.iterdir()):
        if path.suffix in (".cpp", ".h"):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def load_kernels(cache_dir: Path) -> ModuleType:
    """The compiled step, built into `cache_dir` the first time and loaded from there afterwards.
    Raises when it cannot be built (no compiler, no ninja)."""
    folder = kernels_dir(cache_dir)
    if folder not in _loaded:
        from torch.utils.cpp_extension import load

        folder.mkdir(parents=True, exist_ok=True)
        # -fopenmp: at::parallel_for is inline and spreads work with OpenMP pragmas; its symbols
        # resolve to torch's own libgomp. No -march: the kernels carry their own target attributes.
        _loaded[folder] = load(name=f"storybot_decode_step_{source_digest()}", sources=[str(SOURCE)],
                               build_directory=str(folder), extra_cflags=["-O3", "-fopenmp"], verbose=False)
    return _loaded[folder]


def half_scale(scale: torch.Tensor) -> torch.Tensor:
    """Block scales in float16, as GGUF stores them (the step reads 2 bytes a block instead of 4:
    alone it is bound by reading its weights), never 0 (float16's smallest step instead)."""
    return scale.clamp(min=2.0 ** -24).half()


def q4_1_blocks(weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """`weight` (N, K) as Q4_1 blocks: levels packed two a byte (GGUF's order: byte j holds weight
    j in its low nibble and j + 16 in its high one), scales d and minima m in float16 as GGUF
    stores them. A weight on a Q4_1 grid is held exactly: its blocks' minimum and maximum are
    levels 0 and 15."""
    rows, cols = weight.shape
    groups = weight.detach().float().reshape(rows, cols // BLOCK, BLOCK)
    low, high = groups.amin(dim=-1, keepdim=True), groups.amax(dim=-1, keepdim=True)
    scale = half_scale((high - low) / 15)
    low = low.half()
    levels = ((groups - low.float()) / scale.float()).round().clamp(0, 15).to(torch.uint8)
    packed = levels[..., :BLOCK // 2] | (levels[..., BLOCK // 2:] << 4)
    return {"qs": packed.reshape(rows, cols // 2).contiguous(), "d": scale.squeeze(-1).contiguous(),
            "m": low.squeeze(-1).contiguous()}


def q8_0_blocks(weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """`weight` (N, K) as Q8_0 blocks: int8 levels and a float16 scale per 32 (d = max |w| / 127,
    as llama.cpp quantizes and stores it, so a Q8_0 weight is found again exactly)."""
    rows, cols = weight.shape
    groups = weight.detach().float().reshape(rows, cols // BLOCK, BLOCK)
    scale = half_scale(groups.abs().amax(dim=-1, keepdim=True) / 127)
    levels = (groups / scale.float()).round().clamp(-127, 127).to(torch.int8)
    return {"qs": levels.reshape(rows, cols).contiguous(), "d": scale.squeeze(-1).contiguous()}


def q4_1_grid(weight: torch.Tensor) -> torch.Tensor:
    """`weight` rounded to the Q4_1 grid (float32): what the native step computes with."""
    blocks = q4_1_blocks(weight)
    packed = blocks["qs"].reshape(weight.shape[0], -1, BLOCK // 2)
    levels = torch.cat([packed & 0xF, packed >> 4], dim=-1).float()
    return (levels * blocks["d"][..., None].float() + blocks["m"][..., None].float()).reshape(weight.shape)


def q8_0_grid(weight: torch.Tensor) -> torch.Tensor:
    """`weight` rounded to the Q8_0 grid (float32)."""
    blocks = q8_0_blocks(weight)
    levels = blocks["qs"].reshape(weight.shape[0], -1, BLOCK).float()
    return (levels * blocks["d"][..., None].float()).reshape(weight.shape)


def supported_shapes(model: Any) -> bool:
    """Whether every product's inputs split into whole blocks, at most MAX_WIDTH wide (the kernels
    assume both)."""
    config = model.config
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
    return all(width % BLOCK == 0 and width <= MAX_WIDTH
               for width in (config.hidden_size, config.intermediate_size, config.num_attention_heads * head_dim))


class NativeDecodeStep:
    """Next-token logits for 1..MAX_ROWS rows, one token each, in one call to the compiled step."""

    max_rows = MAX_ROWS

    def __init__(self, model: Any, kernels: ModuleType, tensors: list[torch.Tensor]) -> None:
        config = model.config
        self.kernels = kernels
        self.heads = int(config.num_attention_heads)
        self.kv_heads = int(config.num_key_value_heads)
        self.head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // self.heads)
        self.eps = float(config.rms_norm_eps)
        # Tied embeddings (SmolLM2's): input rows are read from the output layer's Q8_0 blocks, as
        # llama.cpp reads them, so an empty tensor stands for them; else the model's own table.
        embed = model.get_input_embeddings().weight
        tied = embed is model.get_output_embeddings().weight
        self.embed = embed.new_empty(0) if tied else embed
        rotary = model.model.rotary_emb  # transformers' own inverse frequencies (any rope scaling)
        self.inv_freq = rotary.inv_freq.detach().float().contiguous()
        self.rope_scaling = float(getattr(rotary, "attention_scaling", 1.0))
        self.weights = tensors
        # 8-bit activations (llama.cpp's way, AVX512-VNNI's integer products) rather than float32:
        # build_native sets it where the processor has VNNI.
        self.int8 = False

    @classmethod
    def build(cls, model: Any, kernels: ModuleType, source: dict[str, torch.Tensor] | None = None) -> NativeDecodeStep:
        """Round `model`'s products to Q4_1 blocks and its output layer to Q8_0 ones; weights
        in `source` (float32, by parameter name) are read rather than the model's own."""
        return cls(model, kernels, pack_model(model, source))

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every weight tensor by its place (what the on-disk cache stores)."""
        return {str(i): t for i, t in enumerate(self.weights)}

    @classmethod
    def from_tensors(cls, model: Any, kernels: ModuleType, stored: dict[str, torch.Tensor]) -> NativeDecodeStep:
        """The step from tensors `tensors` gave before."""
        expected = len(model.model.layers) * LAYER_TENSORS + 3
        if sorted(stored, key=int) != [str(i) for i in range(expected)]:
            raise ValueError(f"expected {expected} tensors, found {len(stored)}")
        return cls(model, kernels, [stored[str(i)] for i in range(expected)])

    @torch.inference_mode()
    def __call__(self, tokens: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor,
                 cache: Any) -> torch.Tensor:
        """tokens and positions (B,), mask (B, T) with the new column; returns (B, vocab) float32."""
        layers = cache.layers
        for layer in layers:
            layer.reserve(1)  # room for the new column, so C++ writes it in place
        logits = self.kernels.step(
            tokens.long().contiguous(), positions.long().contiguous(), mask, self.embed, self.weights,
            [layer.buffers()[0] for layer in layers], [layer.buffers()[1] for layer in layers],
            layers[0].length, self.inv_freq, self.rope_scaling, self.heads, self.kv_heads, self.head_dim,
            self.eps, self.int8)
        for layer in layers:
            layer.advance(1)
        return logits


def gguf_weights(model: Any, gguf_path: Path) -> dict[str, torch.Tensor]:
    """The GGUF file's weights in float32 by `model`'s parameter names, as transformers reads them
    (q and k rows unpermuted). A model loaded in bfloat16 rounded its blocks' scales and minima;
    these are exact, so the blocks packed from them are the file's own (levels, d and m)."""
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    parsed = load_gguf_checkpoint(str(gguf_path), return_tensors=True, model_to_load=model)
    return {name: tensor.float() for name, tensor in parsed.get("tensors", {}).items()}


def pack_model(model: Any, source: dict[str, torch.Tensor] | None = None) -> list[torch.Tensor]:
    """The flat list the C++ step reads (see `step` in decode_step.cpp for the order)."""
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    found = {"source": 0, "model": 0}

    def weight(parameter: torch.Tensor) -> torch.Tensor:
        exact = (source or {}).get(names.get(id(parameter), ""))
        if exact is not None and exact.shape == parameter.shape:
            found["source"] += 1
            return exact
        found["model"] += 1
        return parameter.detach()

    def norm(parameter: torch.Tensor) -> torch.Tensor:
        return weight(parameter).float().contiguous()

    def q4(*parameters: torch.Tensor) -> list[torch.Tensor]:
        blocks = q4_1_blocks(torch.cat([weight(p).float() for p in parameters]))
        return [blocks["qs"], blocks["d"], blocks["m"]]

    flat: list[torch.Tensor] = []
    for layer in model.model.layers:
        attn, mlp = layer.self_attn, layer.mlp
        flat += [norm(layer.input_layernorm.weight), *q4(attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight),
                 *q4(attn.o_proj.weight), norm(layer.post_attention_layernorm.weight),
                 *q4(mlp.gate_proj.weight, mlp.up_proj.weight), *q4(mlp.down_proj.weight)]
    output = q8_0_blocks(weight(model.get_output_embeddings().weight))
    flat += [norm(model.model.norm.weight), output["qs"], output["d"]]
    if source is not None:
        log.info("native step: %d weights read from the GGUF file, %d from the loaded model",
                 found["source"], found["model"])
    return flat
