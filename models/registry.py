"""Turn a model name from the settings into a loaded StepModel."""

from __future__ import annotations

import torch

from models.base import StepModel
from models.text.data import CORPUS, LSTM_DIR

BUILT_IN_MODELS = ("smollm2", "lstm", "markov")
"""Offered in every server: they ship with the project and load offline."""
LSTM_CHECKPOINT = LSTM_DIR


def takes_style(name: str) -> bool:
    """Whether the model can be asked for a voice (models.base.Prompt.style): transformers models
    read it in their prompt; the LSTM and the Markov chain condition on the topic's words only."""
    return name != "lstm" and name != "markov" and not name.startswith("markov-")


def load_model(name: str, device: torch.device) -> StepModel:
    """"lstm" and "markov" are the project's own; anything else is a Hugging Face model."""
    if name == "lstm":
        from models.lstm.backend import LSTMBackend

        return LSTMBackend.load(LSTM_CHECKPOINT, device=device)
    if name == "markov" or name.startswith("markov-"):
        from models.markov import MarkovBackend

        order = int(name.split("-", 1)[1]) if "-" in name else 3
        return MarkovBackend.from_corpus(CORPUS, order=order)
    from models.hf import load_hf_model

    return load_hf_model(name, device)
