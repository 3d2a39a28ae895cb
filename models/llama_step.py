"""A hand-trimmed decode step for Llama-architecture models (SmolLM2) at small batches.

At batch 1 transformers' forward spends most of a step outside the matrix products: masks
built again, per-layer modules, q, k and v and gate and up as separate products. This step
does one token per row with the fewest operations eager PyTorch allows: q, k and v in one
product, gate and up in one, rotary embeddings once for q and k together, and weights in the
format `DecodePlan` chose for this processor (models/weight_formats.py). It reads and writes
the same KV cache as transformers' forward (models/kv_cache.py), so a batch can take either
path at any step: prefill and large batches keep transformers' forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from models.weight_formats import PackedLinear, WeightFormat, pack


@dataclass
class LayerWeights:
    """One decoder layer, its products fused: (q, k, v) and (gate, up)."""

    input_norm: torch.Tensor
    qkv: PackedLinear
    out: PackedLinear
    post_norm: torch.Tensor
    gate_up: PackedLinear
    down: PackedLinear


def supports(model: Any) -> bool:
    """Whether `model` is a Llama this step computes exactly as transformers does."""
    config = model.config
    return (getattr(config, "model_type", None) == "llama" and not getattr(config, "attention_bias", False)
            and not getattr(config, "mlp_bias", False) and getattr(config, "hidden_act", None) == "silu"
            and getattr(config, "pretraining_tp", 1) == 1)


class LlamaDecodeStep:
    """Next-token logits for one token per row, from the batch's KV cache, mask and positions."""

    def __init__(self, model: Any, layers: list[LayerWeights], output: PackedLinear) -> None:
        config = model.config
        self.heads = int(config.num_attention_heads)
        self.kv_heads = int(config.num_key_value_heads)
        self.head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // self.heads)
        self.eps = float(config.rms_norm_eps)
        self.embed = model.get_input_embeddings().weight
        self.rotary = model.model.rotary_emb  # transformers' own: any rope scaling the config asks for
        self.final_norm = model.model.norm.weight
        self.layers = layers
        self.output = output

    @classmethod
    def build(cls, model: Any, layers: WeightFormat, output: WeightFormat) -> LlamaDecodeStep:
        """Pack `model`'s weights: decoder products in `layers`, the output layer in `output`."""
        dtype = model.get_input_embeddings().weight.dtype
        packed = []
        for layer in model.model.layers:
            attn, mlp = layer.self_attn, layer.mlp
            qkv = torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])
            gate_up = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])
            packed.append(LayerWeights(
                layer.input_layernorm.weight, pack(qkv, layers, dtype), pack(attn.o_proj.weight, layers, dtype),
                layer.post_attention_layernorm.weight, pack(gate_up, layers, dtype),
                pack(mlp.down_proj.weight, layers, dtype)))
        return cls(model, packed, pack(model.get_output_embeddings().weight, output, dtype))

    @classmethod
    def from_tensors(cls, model: Any, stored: dict[str, torch.Tensor], layers: WeightFormat,
                     output: WeightFormat) -> LlamaDecodeStep:
        """The step from tensors `tensors` gave before (the on-disk cache): nothing is packed."""
        def linear(prefix: str, format: WeightFormat) -> PackedLinear:
            return PackedLinear.of(format, {k[len(prefix):]: v for k, v in stored.items() if k.startswith(prefix)})

        packed = [LayerWeights(layer.input_layernorm.weight, linear(f"{i}.qkv.", layers), linear(f"{i}.out.", layers),
                               layer.post_attention_layernorm.weight, linear(f"{i}.gate_up.", layers),
                               linear(f"{i}.down.", layers))
                  for i, layer in enumerate(model.model.layers)]
        return cls(model, packed, linear("output.", output))

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every packed tensor by a stable name (what the on-disk cache stores)."""
        found = {f"output.{k}": v for k, v in self.output.tensors.items()}
        for i, layer in enumerate(self.layers):
            for part in ("qkv", "out", "gate_up", "down"):
                linear: PackedLinear = getattr(layer, part)
                found.update({f"{i}.{part}.{k}": v for k, v in linear.tensors.items()})
        return found

    @torch.inference_mode()
    def __call__(self, tokens: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor,
                 cache: Any) -> torch.Tensor:
        """tokens and positions (B,), mask (B, T) with the new column; returns (B, vocab) float32."""
        rows = tokens.shape[0]
        x = F.embedding(tokens, self.embed)  # (B, C)
        cos, sin = self.rotary(x[:, None, :], positions[:, None])  # (B, 1, D)
        cos, sin = cos[:, None], sin[:, None]  # (B, 1, 1, D): every head alike
        # Rows without left padding need no mask (a lone row never has any).
        attention_mask = None if bool(mask.all()) else mask.bool()[:, None, None, :]
        q_width, kv_width = self.heads * self.head_dim, self.kv_heads * self.head_dim
        for index, layer in enumerate(self.layers):
            qkv = layer.qkv(self._norm(x, layer.input_norm))  # (B, (H + 2 KV) D)
            qk = qkv[:, :q_width + kv_width].view(rows, self.heads + self.kv_heads, 1, self.head_dim)
            qk = qk * cos + _rotate_half(qk) * sin
            values = qkv[:, q_width + kv_width:].view(rows, self.kv_heads, 1, self.head_dim)
            keys, values = cache.layers[index].update(qk[:, self.heads:], values)
            attended = F.scaled_dot_product_attention(qk[:, :self.heads], keys, values, attn_mask=attention_mask,
                                                      enable_gqa=self.kv_heads != self.heads)  # (B, H, 1, D)
            x = x + layer.out(attended.reshape(rows, q_width))
            gate, up = layer.gate_up(self._norm(x, layer.post_norm)).chunk(2, dim=-1)
            x = x + layer.down(F.silu(gate) * up)
        return self.output(self._norm(x, self.final_norm)).float()

    def _norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """transformers' LlamaRMSNorm (rms_norm computes in float32 and rounds to x's dtype, as it does)."""
        return weight * F.rms_norm(x, (x.shape[-1],), eps=self.eps)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)
