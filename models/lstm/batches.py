"""Padded training batches and held-out loss for the topic LSTM.

Only paragraph words and the closing <eos> are targets: the topic is given, not predicted,
which is also what the Markov chain's perplexity counts, so the two figures compare.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from models.lstm.model import TopicLSTM
from models.text.data import Example
from models.text.tokenizer import Vocab

IGNORE = -100  # cross_entropy's ignore_index: topic positions and padding


@dataclass
class Batch:
    """Right-padded sequences: inputs and targets (B, T), topic ids and mask (B, K)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    topic_ids: torch.Tensor
    topic_mask: torch.Tensor

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(t.to(device) for t in (self.inputs, self.targets, self.topic_ids, self.topic_mask)))

    @property
    def n_targets(self) -> int:
        return int((self.targets != IGNORE).sum())


def encode(vocab: Vocab, examples: Sequence[Example], max_len: int) -> list[list[int]]:
    """`<bos> topic <sep> text <eos>` ids per example, cut to max_len tokens."""
    return [vocab.example_ids(e.topic, e.text)[:max_len] for e in examples]


def collate(vocab: Vocab, seqs: Sequence[Sequence[int]]) -> Batch:
    """Pad sequences on the right and mask every target up to and including <sep>."""
    width = max(len(s) for s in seqs) - 1
    topics = [vocab.topic_of(s) for s in seqs]
    k = max(1, max(len(t) for t in topics))
    inputs = torch.full((len(seqs), width), vocab.pad, dtype=torch.long)
    targets = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
    topic_ids = torch.full((len(seqs), k), vocab.pad, dtype=torch.long)
    topic_mask = torch.zeros((len(seqs), k))
    for row, (seq, topic) in enumerate(zip(seqs, topics, strict=True)):
        n = len(seq) - 1
        inputs[row, :n] = torch.tensor(seq[:-1])
        first = len(topic) + 1 if seq[0] == vocab.bos else len(topic)  # index of <sep>
        targets[row, first:n] = torch.tensor(seq[first + 1 :])
        if topic:
            topic_ids[row, : len(topic)] = torch.tensor(topic)
            topic_mask[row, : len(topic)] = 1.0
    return Batch(inputs, targets, topic_ids, topic_mask)


def batches(
    vocab: Vocab, seqs: Sequence[Sequence[int]], batch_size: int, rng: random.Random | None = None
) -> Iterator[Batch]:
    """Batches of similar-length sequences (little padding); shuffled when rng is given."""
    order = list(range(len(seqs)))
    if rng is not None:
        rng.shuffle(order)
    pool = batch_size * 50  # sort within pools so batches stay random across epochs
    groups: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: len(seqs[i]))
        groups += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    if rng is not None:
        rng.shuffle(groups)
    for group in groups:
        yield collate(vocab, [seqs[i] for i in group])


def batch_loss(model: TopicLSTM, batch: Batch) -> torch.Tensor:
    """Summed cross-entropy over the batch's targets."""
    topic = model.topic_vector(batch.topic_ids, batch.topic_mask)  # (B, E + V)
    logits, _ = model(batch.inputs, topic)  # (B, T, V)
    return F.cross_entropy(
        logits.flatten(0, 1), batch.targets.flatten(), ignore_index=IGNORE, reduction="sum"
    )


@torch.no_grad()
def mean_nll(model: TopicLSTM, vocab: Vocab, seqs: Sequence[Sequence[int]], batch_size: int = 64) -> float:
    """Mean negative log-likelihood per target token (nats) of sequences, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for batch in batches(vocab, seqs, batch_size):
        batch = batch.to(device)
        total += float(batch_loss(model, batch))
        count += batch.n_targets
    model.train(was_training)
    return total / max(1, count)


def perplexity(nll: float) -> float:
    """exp of a mean NLL, capped so a diverged model reports a big number, not an overflow."""
    return math.exp(min(nll, 50.0))
