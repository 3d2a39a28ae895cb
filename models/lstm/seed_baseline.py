"""The seed notebook's LSTM: two stacked LSTM(256) layers with dropout, no topic conditioning.

Kept as the baseline the project's TopicLSTM is measured against (notebooks/text_generation):
it reads the same `<bos> topic <sep> text <eos>` sequences, so the topic reaches it only as a
prefix it must remember, whereas TopicLSTM gets the topic at every step and can copy its words.
It offers the two methods models.lstm.batches calls, so it trains with the same loop and loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (2, B, 256)


@dataclass
class SeedConfig:
    """The seed's shapes: embedding and both LSTM layers 256 wide."""

    vocab_size: int = 6000
    n_embd: int = 256
    n_hidden: int = 256
    n_layer: int = 2
    dropout: float = 0.2


class SeedLSTM(nn.Module):
    """Embedding -> LSTM(256) -> dropout -> LSTM(256) -> dropout -> linear over the vocabulary."""

    def __init__(self, config: SeedConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.lstm = nn.LSTM(config.n_embd, config.n_hidden, config.n_layer, batch_first=True,
                            dropout=config.dropout)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.n_hidden, config.vocab_size)

    def topic_vector(self, topic_ids: torch.Tensor, topic_mask: torch.Tensor) -> torch.Tensor:
        """No topic code: the baseline sees the topic only as the words before <sep>. (B, 0)."""
        return topic_ids.new_zeros((topic_ids.shape[0], 0), dtype=torch.float)

    def forward(self, idx: torch.Tensor, topic: torch.Tensor, state: State | None = None
                ) -> tuple[torch.Tensor, State]:
        """(B, T) ids -> (B, T, vocab_size) logits and the final state; `topic` is ignored."""
        out, state = self.lstm(self.drop(self.embed(idx)), state)  # (B, T, H)
        return self.head(self.drop(out)), state

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
