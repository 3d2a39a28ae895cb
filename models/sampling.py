"""Sampling as a pipeline of small processors over a batch whose rows have their own settings.

Each processor is `(logits, rows) -> logits` in the spirit of transformers'
logits_process.py, but vectorised across rows that each carry different settings, so one
decode step can serve a greedy row beside a top-p row at temperature 1.3. Masking always
uses -inf, so a token a processor ruled out stays impossible at any temperature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from models.dry import DrySettings, RowDry, apply_dry
from models.name_guard import NameGuard
from models.ngram_ban import NgramBan
from models.params import GenerationParams

NEG_INF = float("-inf")
CANDIDATES = 256  # tokens sorted for a top-p row without top-k (see _draw)


@dataclass
class RowSampling:
    """The sampling state of one row: its settings, its random stream and what it wrote."""

    params: GenerationParams
    eos_token_ids: frozenset[int]
    generator: torch.Generator | None = None
    # Tokens the n-gram ban never forbids: pieces inside a word and punctuation (see
    # models.ngram_ban), so that "lighthouse" can be written twice even under a 2-gram ban.
    ngram_free_tokens: frozenset[int] = frozenset()
    generated: list[int] = field(default_factory=list)
    # DRY over the row's context (its prompt: the story so far) and what it writes; None when off.
    dry: RowDry | None = None
    # The no-repeat n-gram ban over what the row wrote, updated one token at a time.
    ngram_ban: NgramBan = field(default_factory=lambda: NgramBan(0))
    # Tokens the row may not write at a position: the first token of a banned phrase it wrote
    # there before rewinding (bot/engine/rewind.py).
    forbidden: dict[int, set[int]] = field(default_factory=dict)
    # The story's names as token sequences: no penalty keeps the row from writing them again.
    names: NameGuard | None = None
    _spared_at: tuple[int, set[int]] | None = field(default=None, repr=False)  # (position, spared there)

    @classmethod
    def create(cls, params: GenerationParams, eos_token_ids: frozenset[int], seed: int | None,
               ngram_free_tokens: frozenset[int] = frozenset(), context: list[int] | None = None,
               sequence_breakers: frozenset[int] = frozenset(), names: NameGuard | None = None) -> RowSampling:
        """A row's state. DRY runs over `context` (the prompt ids, which carry the story so far) and
        the new tokens; without a context (a new story's first paragraph) it stays off: there is no
        story to loop on yet, and the first paragraph's quality figures measured the same either way."""
        generator = None
        if params.do_sample:
            generator = torch.Generator()
            generator.manual_seed(seed if seed is not None else int(torch.randint(0, 2**62, (1,)).item()))
        dry_settings = DrySettings.of(params)
        dry = RowDry(dry_settings, context, sequence_breakers) if dry_settings.enabled and context is not None else None
        return cls(params=params, eos_token_ids=eos_token_ids, generator=generator,
                   ngram_free_tokens=ngram_free_tokens, dry=dry,
                   ngram_ban=NgramBan(params.no_repeat_ngram_size, ngram_free_tokens), names=names)

    def push(self, token: int) -> None:
        """Record a chosen token (keeps the n-gram table incremental: O(1) per step)."""
        self.generated.append(token)
        if self.dry is not None:
            self.dry.push(token)
        self.ngram_ban.push(token)

    def rewind(self, position: int) -> None:
        """Forget every token from `position` on and forbid the one written there, so that the
        row writes that position again some other way (its random stream goes on, not back)."""
        dropped, removed = self.generated[position], len(self.generated) - position
        self.forbidden = {at: tokens for at, tokens in self.forbidden.items() if at <= position}
        self.forbidden.setdefault(position, set()).add(dropped)
        del self.generated[position:]
        self._spared_at = None  # the same length again holds other tokens
        if self.dry is not None:
            self.dry.truncate(self.dry.length - removed)
        self.ngram_ban = NgramBan.over(self.generated, self.ngram_ban.n, self.ngram_ban.free)

    def spared(self) -> set[int]:
        """Tokens that continue one of the story's names here (asked by three processors a step:
        worked out once per position)."""
        if self.names is None:
            return set()
        if self._spared_at is None or self._spared_at[0] != len(self.generated):
            self._spared_at = (len(self.generated), self.names.spared(self.generated))
        return self._spared_at[1]


def apply_repetition_penalty(logits: torch.Tensor, rows: list[RowSampling]) -> torch.Tensor:
    """CTRL penalty on tokens this row already wrote (divide positive scores, multiply negative),
    except the one that would begin or continue a name of the story."""
    for i, row in enumerate(rows):
        penalty = row.params.repetition_penalty
        if penalty == 1.0 or not row.generated:
            continue
        seen_ids = set(row.generated) - row.spared()
        if not seen_ids:
            continue
        seen = torch.tensor(sorted(seen_ids), dtype=torch.long, device=logits.device)
        scores = logits[i, seen]
        logits[i, seen] = torch.where(scores < 0, scores * penalty, scores / penalty)
    return logits


def apply_dry_penalty(logits: torch.Tensor, rows: list[RowSampling]) -> torch.Tensor:
    """DRY over each row's story so far and its new tokens (models.dry); a name of the story is
    never penalised for being repeated."""
    return apply_dry(logits, [row.dry for row in rows], [row.spared() if row.dry else set() for row in rows])


def apply_no_repeat_ngram(logits: torch.Tensor, rows: list[RowSampling]) -> torch.Tensor:
    """Forbid the token that would repeat an n-gram this row already wrote (never a name's)."""
    for i, row in enumerate(rows):
        banned = row.ngram_ban.banned()
        if banned and row.names is not None:
            banned -= row.spared()
        if banned:
            logits[i, list(banned)] = NEG_INF
    return logits


def apply_forbidden(logits: torch.Tensor, rows: list[RowSampling]) -> torch.Tensor:
    """Forbid what a row wrote here before it rewound (a banned phrase's first token)."""
    for i, row in enumerate(rows):
        tokens = row.forbidden.get(len(row.generated))
        if tokens:
            logits[i, list(tokens)] = NEG_INF
    return logits


def apply_min_new_tokens(logits: torch.Tensor, rows: list[RowSampling]) -> torch.Tensor:
    """End of text is impossible before min_new_tokens (and always when eos is ignored)."""
    for i, row in enumerate(rows):
        if row.eos_token_ids and (row.params.ignore_eos or len(row.generated) < row.params.min_new_tokens):
            logits[i, list(row.eos_token_ids)] = NEG_INF
    return logits


PROCESSORS = (apply_repetition_penalty, apply_dry_penalty, apply_no_repeat_ngram, apply_min_new_tokens,
              apply_forbidden)


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
    temps = torch.tensor([r.params.temperature for r in rows], dtype=logits.dtype, device=logits.device)
    return _draw(logits / temps[:, None], rows, CANDIDATES)  # -inf stays -inf: masked stays impossible


def _draw(logits: torch.Tensor, rows: list[RowSampling], candidates: int) -> list[int]:
    """Top-k, then top-p within it, then a seeded draw per row.

    A row without top-k (top-p alone) would need its whole vocabulary sorted, the costliest part
    of a step; its nucleus almost always lies within the best `candidates` tokens, so only those
    are sorted, and a row whose nucleus reaches past them is drawn again from everything.
    """
    vocab = logits.shape[-1]
    ks = [r.params.effective_top_k or vocab for r in rows]
    top_p = [r.params.effective_top_p for r in rows]
    capped = [k >= vocab and p < 1.0 and candidates < vocab for k, p in zip(ks, top_p, strict=True)]
    ks = [min(k, candidates) if cap else k for k, cap in zip(ks, capped, strict=True)]
    k_max = min(max(ks), vocab)
    values, indices = torch.topk(logits, k_max, dim=-1, sorted=True)  # (B, K)
    ranks = torch.arange(k_max, device=logits.device)[None, :]
    values = values.masked_fill(ranks >= torch.tensor(ks, device=logits.device)[:, None], NEG_INF)
    # Probabilities among what top-k keeps: a capped row's candidates share the whole vocabulary's mass.
    norm = torch.logsumexp(values, dim=-1)
    if any(capped):  # the whole vocabulary's sum only where needed: 36 us of a 5.8 ms token alone
        norm = torch.where(torch.tensor(capped, device=logits.device), torch.logsumexp(logits, dim=-1), norm)
    probs = torch.exp(values - norm[:, None])
    p_t = torch.tensor(top_p, dtype=probs.dtype, device=logits.device)[:, None]
    before = probs.cumsum(dim=-1) - probs  # probability mass strictly before each token
    probs = probs.masked_fill(before >= p_t, 0.0)  # the best token always stays
    redo = [i for i, cap in enumerate(capped) if cap and float(probs[i].sum()) < top_p[i]]
    # One transfer, then a few scalar operations per row on the CPU.
    cumulative = probs.double().cumsum(dim=-1).cpu()
    indices = indices.cpu()
    picks: list[int] = []
    for i, row in enumerate(rows):
        u = torch.rand(1, generator=row.generator, dtype=torch.float64).item() * float(cumulative[i, -1])
        if i in redo:
            picks.append(-1)
            continue
        position = int(torch.searchsorted(cumulative[i], torch.tensor([u], dtype=torch.float64), right=True))
        position = min(position, k_max - 1)
        while probs[i, position] == 0 and position > 0:  # float edge at the tail
            position -= 1
        picks.append(int(indices[i, position]))
    if redo:  # rare: a flat distribution whose nucleus is wider than the candidates
        again = _draw(logits[redo], [rows[i] for i in redo], vocab)
        for i, token in zip(redo, again, strict=True):
            picks[i] = token
    return picks
