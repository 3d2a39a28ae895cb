"""LoRA (PEFT) or full fine-tuning: which weights train, how to save them, how to merge them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class LoraSettings:
    """Low-rank adapters on every linear layer but the output head."""

    r: int = 16  # rank of each adapter: 16 learns a voice; 8 is plenty for small corpora
    alpha: int = 32  # scale alpha/r = 2, PEFT's common choice
    dropout: float = 0.05
    top_layers: int = 0  # adapt only the last N transformer blocks (0: all). Backpropagation then
    # stops at the lowest adapted block: on a busy CPU, the top 10 of SmolLM2's 30 halve a step.


def make_trainable(model: Any, method: str, lora: LoraSettings) -> Any:
    """The model ready to train: wrapped with LoRA adapters ("lora") or wholly unfrozen ("full")."""
    if method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if method != "lora":
        raise ValueError(f"method must be 'lora' or 'full', got {method!r}")
    from peft import LoraConfig, get_peft_model

    targets: str | list[str] = _top_block_linears(model, lora.top_layers) if lora.top_layers else "all-linear"
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=targets, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def _top_block_linears(model: Any, top: int) -> list[str]:
    """Names of the linear layers (GPT-2's Conv1D too) inside the last `top` transformer blocks."""
    from transformers.pytorch_utils import Conv1D

    block = re.compile(r"\.(?:layers|h)\.(\d+)\.")
    found = [(int(m.group(1)), name) for name, module in model.named_modules()
             if isinstance(module, (torch.nn.Linear, Conv1D)) and (m := block.search(name))]
    if not found:
        raise ValueError("cannot find this model's transformer blocks to adapt only the top ones")
    last = max(index for index, _ in found)
    return [name for index, name in found if index > last - top]


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights being trained (the adapters for LoRA, everything for full), on the CPU."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {n: t.detach().to("cpu", copy=True) for n, t in model.state_dict().items() if n in names}


def load_trainable_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Put saved trainable weights back; every one must match a parameter of `model`."""
    missing = set(state) - set(model.state_dict())
    if missing:
        raise ValueError(f"checkpoint does not fit this model: {sorted(missing)[:3]}")
    model.load_state_dict(state, strict=False)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def merged(model: Any) -> Any:
    """A plain transformers model: LoRA adapters folded into the base weights."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
