"""LoRA (PEFT) or full fine-tuning: which weights train, how to save them, how to merge them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class LoraSettings:
    """Low-rank adapters on every linear layer but the output head."""

    r: int = 16  # rank of each adapter: 16 learns a voice; 8 is plenty for small corpora
    alpha: int = 32  # scale alpha/r = 2, PEFT's common choice
    dropout: float = 0.05


def make_trainable(model: Any, method: str, lora: LoraSettings) -> Any:
    """The model ready to train: wrapped with LoRA adapters ("lora") or wholly unfrozen ("full")."""
    if method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if method != "lora":
        raise ValueError(f"method must be 'lora' or 'full', got {method!r}")
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


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
