"""The topic LSTM as a StepModel backend (models.base) for the generation engine.

A row's state is its LSTM (h, c) plus its topic vector; rows join with `prefill` (their
prompts run together as a packed batch), step together with `decode` and leave with `keep`.
Logits of tokens that are structure, not text (<pad>, <unk>, <bos>, <sep>), are -inf.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from models.base import Prompt
from models.dry import sequence_breaker_ids
from models.lstm.beam import beam_search
from models.lstm.model import TopicLSTM, load_checkpoint
from models.params import GenerationParams
from models.text.data import LSTM_DIR
from models.text.tokenizer import SPECIALS, Vocab

DEFAULT_CHECKPOINT = LSTM_DIR / "best.pt"


@dataclass
class LSTMBatch:
    """Batch state: h and c (n_layer, B, n_hidden) and topic codes (B, n_embd + vocab_size)."""

    h: torch.Tensor
    c: torch.Tensor
    topic: torch.Tensor

    def __len__(self) -> int:
        return self.topic.shape[0]


class LSTMBackend:
    """Word-level topic LSTM driven step by step; see models.base.StepModel."""

    name = "lstm"

    def __init__(self, model: TopicLSTM, vocab: Vocab, device: torch.device | str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.vocab = vocab
        self.device = torch.device(device)
        self.vocab_size = len(vocab)
        self.eos_token_ids = frozenset({vocab.eos})
        self.ngram_free_tokens: frozenset[int] = frozenset()  # every token is a whole word
        self.sequence_breaker_tokens = sequence_breaker_ids(vocab.itos, range(len(SPECIALS)))
        self.context_window = model.config.context_window
        self._mask = torch.zeros(self.vocab_size, device=self.device)
        self._mask[vocab.special_ids()] = float("-inf")

    @classmethod
    def load(cls, path: Path | str = DEFAULT_CHECKPOINT, device: torch.device | str = "cpu") -> LSTMBackend:
        """A backend from a checkpoint written by models.lstm.train (a file, or a folder
        holding best.pt)."""
        path = Path(path)
        model, tokens, _ = load_checkpoint(path / "best.pt" if path.is_dir() else path, device)
        return cls(model, Vocab(tokens), device)

    def encode_prompt(self, prompt: Prompt, max_new_tokens: int) -> list[int]:
        """`<bos> topic <sep>` + the last history words + direction words, leaving room for
        max_new_tokens within context_window."""
        return self.vocab.prompt_ids(prompt, max(4, self.context_window - max_new_tokens))

    def decode_text(self, ids: list[int]) -> str:
        return self.vocab.decode(ids)

    def name_token_ids(self, name: str) -> list[list[int]]:
        return self.vocab.name_token_ids(name)

    def new_batch(self) -> LSTMBatch:
        cfg = self.model.config
        h = torch.zeros(cfg.n_layer, 0, cfg.n_hidden, device=self.device)
        return LSTMBatch(h, h.clone(), torch.zeros(0, cfg.n_embd + cfg.vocab_size, device=self.device))

    @torch.no_grad()
    def prefill(self, batch: LSTMBatch, prompts: list[list[int]]) -> torch.Tensor:
        """Run the prompts (each from a zero state) and append their rows to the batch."""
        if not prompts:
            return torch.zeros(0, self.vocab_size, device=self.device)
        if any(not p for p in prompts):
            raise ValueError("a prompt must have at least one token")
        topics = [self.vocab.topic_of(p) for p in prompts]
        width = max(1, max(len(t) for t in topics))
        topic_ids = torch.full((len(prompts), width), self.vocab.pad, dtype=torch.long)
        topic_mask = torch.zeros(len(prompts), width)
        idx = torch.full((len(prompts), max(map(len, prompts))), self.vocab.pad, dtype=torch.long)
        for row, (prompt, words) in enumerate(zip(prompts, topics, strict=True)):
            idx[row, : len(prompt)] = torch.tensor(prompt)
            topic_ids[row, : len(words)] = torch.tensor(words, dtype=torch.long)
            topic_mask[row, : len(words)] = 1.0
        dev = self.device
        topic = self.model.topic_vector(topic_ids.to(dev), topic_mask.to(dev))  # (P, E + V)
        lengths = torch.tensor([len(p) for p in prompts])
        logits, (h, c) = self.model.run_packed(idx.to(dev), lengths, topic)
        batch.h = torch.cat([batch.h, h], dim=1)
        batch.c = torch.cat([batch.c, c], dim=1)
        batch.topic = torch.cat([batch.topic, topic], dim=0)
        return self._finish(logits)

    @torch.no_grad()
    def decode(self, batch: LSTMBatch, tokens: torch.Tensor) -> torch.Tensor:
        """One step for every row: tokens (B,) -> logits (B, vocab_size)."""
        if tokens.shape[0] != len(batch):
            raise ValueError(f"decode got {tokens.shape[0]} tokens for a batch of {len(batch)} rows")
        if len(batch) == 0:
            return torch.zeros(0, self.vocab_size, device=self.device)
        idx = tokens.to(self.device, torch.long).unsqueeze(1)  # (B, 1)
        logits, (batch.h, batch.c) = self.model(idx, batch.topic, (batch.h, batch.c))
        return self._finish(logits[:, -1])

    @torch.no_grad()
    def rewind(self, batch: LSTMBatch, row: int, kept: list[int], drop: int) -> None:
        """The row's state as it was after `kept` (a rewind past a banned phrase): run again
        from a zero state over `kept`, with the row's own topic code."""
        batch.h[:, row] = 0
        batch.c[:, row] = 0
        if kept:
            idx = torch.tensor([kept], dtype=torch.long, device=self.device)
            _, (h, c) = self.model.run_packed(idx, torch.tensor([len(kept)]), batch.topic[row:row + 1])
            batch.h[:, row], batch.c[:, row] = h[:, 0], c[:, 0]

    def keep(self, batch: LSTMBatch, rows: list[int]) -> None:
        """Keep these rows in this order; a repeated row is copied (beam search relies on it)."""
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        batch.h = batch.h.index_select(1, index)
        batch.c = batch.c.index_select(1, index)
        batch.topic = batch.topic.index_select(0, index)

    def beam_search(self, prompt_ids: list[int], params: GenerationParams) -> list[int]:
        """Ids of the best beam (without <eos>); see models.lstm.beam."""
        return beam_search(self, prompt_ids, params, self.sequence_breaker_tokens)

    def _finish(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float() + self._mask  # (B, V) float32, structure tokens at -inf
