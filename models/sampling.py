"""Sampling as a pipeline of small processors over a batch whose rows have their own settings.

Each processor is `(logits, rows) -> logits` in the spirit of transformers'
logits_process.py, but vectorised across rows that each carry different settings, so one
decode step can serve a greedy row beside a top-p row at temperature 1.3. Masking always
uses -inf, so a token a processor ruled out stays impossible at any temperature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from models.params import GenerationParams

NEG_INF = float("-inf")


@dataclass
class RowSampling:
    """The sampling state of one row: its settings, its random stream and what it wrote."""

    params: GenerationParams
    eos_token_ids: frozenset[int]
    generator: torch.Generator | None = None
    generated: list[int] = field(default_factory=list)
    # prefix (n-1 tokens) -> tokens that followed it; updated one token at a time.
    _ngrams: dict[tuple[int, ...], set[int]] = field(default_factory=dict)

    @classmethod
    def create(cls, params: GenerationParams, eos_token_ids: frozenset[int], seed: int | None) -> RowSampling:
        generator = None
        if params.do_sample:
            generator = torch.Generator()
            generator.manual_seed(seed if seed is not None else int(torch.randint(0, 2**62, (1,)).item()))
        return cls(params=params, eos_token_ids=eos_token_ids, generator=generator)

    def push(self, token: int) -> None:
        """Record a chosen token (keeps the n-gram table incremental: O(1) per step)."""
        self.generated.append(token)
        n = self.params.no_repeat_ngram_size
        if n > 0 and len(self.generated) >= n:
            prefix = tuple(self.generated[-n:-1])
            self._ngrams.setdefault(prefix, set()).add(token)

    def banned_by_ngrams(self) -> list[int]:
        n = self.params.no_repeat_ngram_size
        if n <= 0 or len(self.generated) < n - 1:
            return []
        prefix = tuple(self.generated[len(self.generated) - (n - 1):]) if n > 1 else ()
        return list(self._ngrams.get(prefix, ()))


def apply_repetition_penalty(logits: torch.Tensor, rows: list[RowSampling]) -> torch.Tensor:
    """CTRL penalty on tokens this row already wrote (divide positive scores, multiply negative)."""
    for i, row in enumerate(rows):
        penalty = row.params.repetition_penalty
        if penalty == 1.0 or not row.generated:
            continue
        seen = torch.tensor(sorted(set(row.generated)), dtype=torch.long, device=logits.device)
        scores = logits[i, seen]
        logits[i, seen] = torch.where(scores < 0, scores * penalty, scores / penalty)
    return logits


def apply_no_repeat_ngram(logits: torch.Tensor, rows: list[RowSampling]) -> torch.Tensor:
    """Forbid the token that would repeat an n-gram this row already wrote."""
    for i, row in enumerate(rows):
        banned = row.banned_by_ngrams()
        if banned:
            logits[i, banned] = NEG_INF
    return logits


def apply_min_new_tokens(logits: torch.Tensor, rows: list[RowSampling]) -> torch.Tensor:
    """End of text is impossible before min_new_tokens (and always when eos is ignored)."""
    for i, row in enumerate(rows):
        ignore_eos = bool(row.params.extra.get("ignore_eos"))
        if row.eos_token_ids and (ignore_eos or len(row.generated) < row.params.min_new_tokens):
            logits[i, list(row.eos_token_ids)] = NEG_INF
    return logits


PROCESSORS = (apply_repetition_penalty, apply_no_repeat_ngram, apply_min_new_tokens)


def choose_tokens(logits: torch.Tensor, rows: list[RowSampling]) -> list[int]:
    """Pick the next token of every row: argmax for greedy rows, a seeded draw for the rest."""
    logits = logits.float()
    for processor in PROCESSORS:
        logits = processor(logits, rows)
    chosen = logits.argmax(dim=-1).tolist()
    sampled = [i for i, row in enumerate(rows) if row.params.do_sample]
    if sampled:
        picks = _sample_rows(logits[sampled], [rows[i] for i in sampled])
        for i, token in zip(sampled, picks, strict=True):
            chosen[i] = token
    return chosen


def _sample_rows(logits: torch.Tensor, rows: list[RowSampling]) -> list[int]:
    """Temperature, top-k and top-p per row, then one draw per row from its own generator."""
    vocab = logits.shape[-1]
    temps = torch.tensor([r.params.temperature for r in rows], dtype=logits.dtype, device=logits.device)
    logits = logits / temps[:, None]  # -inf stays -inf: masked tokens stay impossible
    ks = [r.params.effective_top_k or vocab for r in rows]
    k_max = min(max(ks), vocab)
    # Sorting only the k_max best keeps a step cheap when every row has a top-k.
    values, indices = torch.topk(logits, k_max, dim=-1, sorted=True)  # (B, K)
    ranks = torch.arange(k_max, device=logits.device)[None, :]
    k_tensor = torch.tensor(ks, device=logits.device)[:, None]
    values = values.masked_fill(ranks >= k_tensor, NEG_INF)
    top_p = torch.tensor([r.params.effective_top_p for r in rows], dtype=logits.dtype, device=logits.device)
    probs = torch.softmax(values, dim=-1)
    before = probs.cumsum(dim=-1) - probs  # probability mass strictly before each token
    values = values.masked_fill(before >= top_p[:, None], NEG_INF)  # the best token always stays
    probs = torch.softmax(values, dim=-1)
    # One transfer, then a few scalar operations per row on the CPU.
    cumulative = probs.double().cumsum(dim=-1).cpu()
    values, indices = values.cpu(), indices.cpu()
    picks: list[int] = []
    for i, row in enumerate(rows):
        u = torch.rand(1, generator=row.generator, dtype=torch.float64).item() * float(cumulative[i, -1])
        position = int(torch.searchsorted(cumulative[i], torch.tensor([u], dtype=torch.float64)))
        position = min(position, k_max - 1)
        while values[i, position] == NEG_INF and position > 0:  # float edge at the tail
            position -= 1
        picks.append(int(indices[i, position]))
    return picks
