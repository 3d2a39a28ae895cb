"""DRY ("don't repeat yourself"): a penalty on the token that would extend a repeat of the context.

The sampler of p-e-w, as llama.cpp (`dry_multiplier`, `dry_base`, `dry_allowed_length`,
`dry_penalty_last_n`, `dry_sequence_breakers`), koboldcpp and text-generation-webui apply it.
When the last n tokens of the context (the story so far, prompt included, plus what the row
wrote) also occur earlier followed by token t, writing t would make the repeat n+1 long; for
n >= allowed_length, t's logit loses multiplier * base ** (n - allowed_length), the longest
such n counting. A repeat never spans a sequence breaker (newline, quote, colon, asterisk, and
special tokens), so names and short phrases recur freely, and a breaker itself is never
penalised. Only the last `penalty_last_n` tokens count (-1: all of them).

A row keeps, for every position e of its context, the length of the longest breaker-free run
ending at e that equals the run ending at the last token (`RowDry.matches`); one new token
updates it with one shift and one compare, so a step costs O(context) per row, never a search.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from models.params import GenerationParams

# llama.cpp's default sequence breakers.
DEFAULT_SEQUENCE_BREAKERS: tuple[str, ...] = ("\n", ":", '"', "*")
FLOAT_MAX_LOG = 88.7228391  # log of float32's largest value: base ** exponent stays finite below it


@dataclass(frozen=True)
class DrySettings:
    """DRY's settings for one row (see models.params for their ranges)."""

    multiplier: float = 0.0
    base: float = 1.75
    allowed_length: int = 2
    penalty_last_n: int = -1  # -1: the whole context; 0: off

    @classmethod
    def of(cls, params: GenerationParams) -> DrySettings:
        """The DRY settings of a GenerationParams."""
        return cls(params.dry_multiplier, params.dry_base, params.dry_allowed_length, params.dry_penalty_last_n)

    @property
    def enabled(self) -> bool:
        return self.multiplier > 0 and self.base >= 1.0 and self.penalty_last_n != 0

    def penalty(self, lengths: torch.Tensor) -> torch.Tensor:
        """multiplier * base ** (length - allowed_length), the exponent clamped so it stays finite."""
        exponent = (lengths - self.allowed_length).float()
        if self.base > 1.000001:
            exponent = exponent.clamp(max=float(int(FLOAT_MAX_LOG / math.log(self.base))))
        return self.multiplier * torch.pow(torch.tensor(self.base, dtype=torch.float32), exponent)


NO_DRY = DrySettings()  # multiplier 0: off


def sequence_breaker_ids(pieces: Sequence[str], special: Iterable[int] = (),
                         breakers: Sequence[str] = DEFAULT_SEQUENCE_BREAKERS) -> frozenset[int]:
    """Ids of the tokens whose text (`pieces[id]`) contains a breaker, plus the special tokens."""
    found = {i for i, piece in enumerate(pieces) if any(b in piece for b in breakers)}
    return frozenset(found | set(special))


def tokenizer_breaker_ids(tokenizer: Any, breakers: Sequence[str] = DEFAULT_SEQUENCE_BREAKERS) -> frozenset[int]:
    """sequence_breaker_ids for a Hugging Face tokenizer: each token's decoded text."""
    ids = list(range(len(tokenizer)))
    pieces = tokenizer.batch_decode([[i] for i in ids], clean_up_tokenization_spaces=False)
    return sequence_breaker_ids(pieces, getattr(tokenizer, "all_special_ids", []) or [], breakers)


def match_lengths(seq: torch.Tensor, is_breaker: torch.Tensor) -> torch.Tensor:
    """For each position e of `seq` (1-D), the length of the longest run ending at e that equals
    the run ending at the last token, with no breaker in it (0 for the last position itself)."""
    length = seq.shape[0]
    matches = torch.zeros(length, dtype=torch.long, device=seq.device)
    if length < 2:
        return matches
    alive = torch.ones(length - 1, dtype=torch.bool, device=seq.device)  # candidates e = 0 .. L-2
    ends = torch.arange(length - 1, device=seq.device)
    for k in range(length - 1):  # compare seq[e - k] with seq[L - 1 - k]
        tail = seq[length - 1 - k]
        if bool(is_breaker[tail]):
            break
        valid = ends - k >= 0
        alive = alive & valid & (seq[(ends - k).clamp(min=0)] == tail)
        if not bool(alive.any()):
            break
        matches[:-1] += alive.long()
    return matches


def penalised_tokens(seq: torch.Tensor, matches: torch.Tensor, settings: DrySettings,
                     is_breaker: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens, repeat lengths): each token that would extend a repeat of at least allowed_length
    within the last penalty_last_n tokens, with its longest such repeat (one entry per token)."""
    length = seq.shape[0]
    if length < 2:
        return seq[:0], seq[:0]
    start = 0 if settings.penalty_last_n < 0 else max(0, length - settings.penalty_last_n)
    ends = torch.arange(start, length - 1, device=seq.device)
    # A repeat counts only as far back as the window reaches.
    lengths = torch.minimum(matches[start:length - 1], ends - start + 1)
    nexts = seq[start + 1:length]
    keep = (lengths >= settings.allowed_length) & ~is_breaker[nexts]
    nexts, lengths = nexts[keep], lengths[keep]
    if not len(nexts):
        return nexts, lengths
    tokens, inverse = torch.unique(nexts, return_inverse=True)
    longest = torch.zeros(len(tokens), dtype=lengths.dtype, device=seq.device)
    longest.scatter_reduce_(0, inverse, lengths, reduce="amax")
    return tokens, longest


class RowDry:
    """One row's context and match lengths, updated one token at a time."""

    def __init__(self, settings: DrySettings, context: Sequence[int], breakers: frozenset[int],
                 room: int = 256) -> None:
        self.settings = settings
        size = max(1 + max(breakers, default=0), 1 + max(context, default=0))
        self.is_breaker = torch.zeros(size, dtype=torch.bool)
        if breakers:
            self.is_breaker[list(breakers)] = True
        self.length = len(context)
        self.seq = torch.zeros(self.length + room, dtype=torch.long)
        self.seq[: self.length] = torch.tensor(list(context), dtype=torch.long)
        self.matches = torch.zeros_like(self.seq)
        self.matches[: self.length] = match_lengths(self.seq[: self.length], self.is_breaker)

    def push(self, token: int) -> None:
        """Append a token: a run matching the new suffix is a run that matched the old suffix
        and is followed by the same token (a breaker ends every run)."""
        if self.length == self.seq.shape[0]:  # grow by doubling
            self.seq = torch.cat([self.seq, torch.zeros_like(self.seq)])
            self.matches = torch.cat([self.matches, torch.zeros_like(self.matches)])
        n = self.length
        if token >= self.is_breaker.shape[0]:  # an id past the vocabulary seen so far: not a breaker
            self.is_breaker = torch.cat([self.is_breaker, self.is_breaker.new_zeros(token + 1)])
        if bool(self.is_breaker[token]):
            self.matches[:n] = 0
        elif n:
            same = self.seq[:n] == token
            extended = torch.cat([self.matches.new_zeros(1), self.matches[: n - 1]]) + 1
            self.matches[:n] = torch.where(same, extended, 0)
        self.seq[n] = token
        self.matches[n] = 0
        self.length = n + 1

    def truncate(self, length: int) -> None:
        """Forget the tokens from `length` on (a row that rewinds): the match lengths are those of
        the shorter sequence, computed again."""
        self.length = max(0, min(length, self.length))
        self.seq[self.length:] = 0
        self.matches[self.length:] = 0
        self.matches[: self.length] = match_lengths(self.seq[: self.length], self.is_breaker)

    def penalised(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens, penalties) to subtract from this row's logits now."""
        tokens, lengths = penalised_tokens(self.seq[: self.length], self.matches[: self.length],
                                           self.settings, self.is_breaker)
        return tokens, self.settings.penalty(lengths)


def apply_dry(logits: torch.Tensor, rows: Sequence[RowDry | None],
              spared: Sequence[set[int]] = ()) -> torch.Tensor:
    """Subtract every row's DRY penalties from its logits, in one indexed update for the batch,
    except on the tokens `spared[i]` of each row (those that continue a name of the story)."""
    row_index, token_index, amounts = [], [], []
    for i, dry in enumerate(rows):
        if dry is None:
            continue
        tokens, penalties = dry.penalised()
        tokens_ok = tokens < logits.shape[-1]
        if i < len(spared) and spared[i] and len(tokens):
            tokens_ok &= ~torch.isin(tokens, torch.tensor(sorted(spared[i]), dtype=tokens.dtype))
        if len(tokens):
            row_index.append(torch.full((int(tokens_ok.sum()),), i, dtype=torch.long))
            token_index.append(tokens[tokens_ok])
            amounts.append(penalties[tokens_ok])
    if row_index:
        rows_t, tokens_t = torch.cat(row_index).to(logits.device), torch.cat(token_index).to(logits.device)
        logits.index_put_((rows_t, tokens_t), -torch.cat(amounts).to(logits.device, logits.dtype),
                          accumulate=True)
    return logits


def dry_logits(logits: torch.Tensor, sequences: torch.Tensor, settings: DrySettings,
               breakers: frozenset[int]) -> torch.Tensor:
    """DRY for whole sequences at once (transformers' beam search): (B, T) ids -> penalised (B, V)."""
    if not settings.enabled:
        return logits
    size = max(logits.shape[-1], 1 + max(breakers, default=0), 1 + int(sequences.max()) if sequences.numel() else 0)
    is_breaker = torch.zeros(size, dtype=torch.bool, device=sequences.device)
    if breakers:
        is_breaker[list(breakers)] = True
    for row in range(sequences.shape[0]):
        seq = sequences[row]
        tokens, lengths = penalised_tokens(seq, match_lengths(seq, is_breaker), settings, is_breaker)
        keep = tokens < logits.shape[-1]
        if bool(keep.any()):
            logits[row, tokens[keep]] -= settings.penalty(lengths[keep]).to(logits.device, logits.dtype)
    return logits
