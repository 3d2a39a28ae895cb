"""A topic-conditioned word-level LSTM language model.

The input sequence is `<bos> topic words <sep> paragraph words <eos>`; on top of that, a
topic vector (the mean embedding of the topic words) is concatenated to every step's input,
so the paragraph's last words still "see" the topic after a hundred steps. A copy gate (the
pointer-generator idea, in logit space) adds a learned boost to the logits of the topic's own
words, so a topic never seen in training still gets written about. Output weights are tied to
the input embedding, which halves the parameters of a small-vocabulary model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.training import save_atomic

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (n_layer, B, n_hidden)


@dataclass
class LSTMConfig:
    """Shape and regularisation of a TopicLSTM; stored in every checkpoint."""

    vocab_size: int = 6000  # words incl. the 5 specials; ~97% of corpus tokens are in the top 6k
    n_embd: int = 192
    n_hidden: int = 384
    n_layer: int = 1
    dropout: float = 0.4  # ~150k-token corpora overfit within a few epochs without it
    embd_dropout: float = 0.1  # drops whole input embeddings (word dropout, Gal & Ghahramani)
    context_window: int = 512  # an LSTM has no hard limit; this bounds prompt history + output


class TopicLSTM(nn.Module):
    """Embedding -> [word ; topic] -> LSTM -> projection -> tied output embedding."""

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.lstm = nn.LSTM(
            2 * config.n_embd,
            config.n_hidden,
            config.n_layer,
            batch_first=True,
            dropout=config.dropout if config.n_layer > 1 else 0.0,
        )
        self.drop = nn.Dropout(config.dropout)
        self.proj = nn.Linear(config.n_hidden, config.n_embd)  # back to embedding size for tying
        self.head_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.copy_gate = nn.Linear(config.n_hidden, 1)  # how much to copy a topic word now
        self.copy_bias = nn.Parameter(torch.zeros(config.vocab_size))  # which words are worth copying
        nn.init.normal_(self.embed.weight, std=0.05)

    def topic_vector(self, topic_ids: torch.Tensor, topic_mask: torch.Tensor) -> torch.Tensor:
        """A row's topic code: its words' mean embedding, then their multi-hot bag for the copy
        gate. Ids and mask (B, K) -> (B, n_embd + vocab_size); no topic words give zeros."""
        emb = self.embed(topic_ids) * topic_mask.unsqueeze(-1)  # (B, K, E)
        mean = emb.sum(1) / topic_mask.sum(1, keepdim=True).clamp(min=1)  # (B, E)
        bag = torch.zeros(topic_ids.shape[0], self.config.vocab_size, device=topic_ids.device)
        bag.scatter_(1, topic_ids, topic_mask)  # pad positions scatter zeros
        return torch.cat([mean, bag.clamp(max=1)], dim=-1)

    def head(self, hidden: torch.Tensor, topic: torch.Tensor) -> torch.Tensor:
        """Logits from LSTM outputs and topic codes: (B, [T,] n_hidden) -> (B, [T,] vocab_size)."""
        logits = F.linear(self.proj(self.drop(hidden)), self.embed.weight, self.head_bias)
        bag = topic[:, self.config.n_embd:]  # (B, V)
        if hidden.dim() == 3:
            bag = bag.unsqueeze(1)  # (B, 1, V)
        return logits + bag * (self.copy_gate(hidden) + self.copy_bias)

    def inputs(self, idx: torch.Tensor, topic: torch.Tensor) -> torch.Tensor:
        """Step inputs: word embeddings with the topic vector alongside, (B, T) -> (B, T, 2E)."""
        topic = topic[:, : self.config.n_embd]
        emb = self.embed(idx)  # (B, T, E)
        if self.training and self.config.embd_dropout > 0:
            keep = torch.rand(idx.shape, device=idx.device) >= self.config.embd_dropout
            emb = emb * keep.unsqueeze(-1) / (1 - self.config.embd_dropout)
        emb = self.drop(emb)
        return torch.cat([emb, topic.unsqueeze(1).expand(-1, idx.shape[1], -1)], dim=-1)

    def forward(
        self, idx: torch.Tensor, topic: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """Logits for every position and the state after the last: (B, T), (B, E) ->
        (B, T, vocab_size), (h, c)."""
        out, state = self.lstm(self.inputs(idx, topic), state)  # (B, T, H)
        return self.head(out, topic), state

    def run_packed(
        self, idx: torch.Tensor, lengths: torch.Tensor, topic: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """Run right-padded rows of different lengths; return each row's next-token logits
        after its last real token (B, vocab_size) and the state there."""
        x = self.inputs(idx, topic)  # (B, T, 2E)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h, c) = self.lstm(packed, state)  # h, c: (L, B, H) at each row's own last step
        return self.head(h[-1], topic), (h, c)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def save_checkpoint(path: Path, model: TopicLSTM, vocab: list[str], **extra: Any) -> None:
    """Write config, weights and vocabulary (plus training state in `extra`) atomically."""
    save_atomic({"config": asdict(model.config), "model": model.state_dict(), "vocab": vocab, **extra}, path)


def load_checkpoint(
    path: Path | str, device: str | torch.device = "cpu"
) -> tuple[TopicLSTM, list[str], dict]:
    """(model in eval mode, vocabulary tokens, the whole checkpoint dict) from a saved file."""
    ckpt = torch.load(path, map_location=device, weights_only=True)
    model = TopicLSTM(LSTMConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), list(ckpt["vocab"]), ckpt
