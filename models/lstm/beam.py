"""Beam search over any backend with the step interface of models.base (prefill/decode/keep).

Beams are rows of one batch; `keep` with repeated row indices copies a beam's state to its
children, so the backend needs nothing beyond the StepModel methods. Length normalisation,
the no-repeat-n-gram ban and the stopping rule follow transformers' BeamSearchScorer
(length_penalty 1.0, early_stopping False).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from models.dry import NO_DRY, DrySettings, dry_logits
from models.ngram_ban import banned_by_ngrams
from models.params import GenerationParams


class Stepper(Protocol):
    eos_token_ids: frozenset[int]

    def new_batch(self) -> Any: ...
    def prefill(self, batch: Any, prompts: list[list[int]]) -> torch.Tensor: ...
    def decode(self, batch: Any, tokens: torch.Tensor) -> torch.Tensor: ...
    def keep(self, batch: Any, rows: list[int]) -> None: ...


@dataclass
class Hypothesis:
    ids: list[int]
    score: float  # summed log-probability


def penalise(logits: torch.Tensor, seqs: list[list[int]], penalty: float) -> torch.Tensor:
    """CTRL repetition penalty: every token already in a row's sequence becomes less likely."""
    if penalty == 1.0:
        return logits
    logits = logits.clone()
    for row, seq in enumerate(seqs):
        ids = torch.tensor(sorted(set(seq)), dtype=torch.long, device=logits.device)
        if len(ids):
            vals = logits[row, ids]
            logits[row, ids] = torch.where(vals > 0, vals / penalty, vals * penalty)
    return logits


def step_scores(
    logits: torch.Tensor,
    seqs: list[list[int]],
    n_generated: int,
    min_new_tokens: int,
    no_repeat_ngram_size: int,
    repetition_penalty: float,
    eos: list[int],
    dry: DrySettings = NO_DRY,
    breakers: frozenset[int] = frozenset(),
) -> torch.Tensor:
    """Log-probabilities (beams, vocab) after the penalties (CTRL, then DRY over prompt and beam),
    the n-gram ban and the minimum length."""
    logits = penalise(logits.float(), seqs, repetition_penalty)
    if dry.enabled:
        logits = dry_logits(logits, torch.tensor(seqs, dtype=torch.long), dry, breakers)
    if n_generated < min_new_tokens:
        logits[:, eos] = float("-inf")
    for row, seq in enumerate(seqs):
        banned = list(banned_by_ngrams(seq, no_repeat_ngram_size))
        if banned:
            logits[row, banned] = float("-inf")
    return torch.log_softmax(logits, dim=-1)


def beam_search(model: Stepper, prompt_ids: list[int], params: GenerationParams,
                breakers: frozenset[int] = frozenset()) -> list[int]:
    """Generated ids (without the final end token) of the best beam: `params` gives num_beams,
    max_new_tokens, min_new_tokens, no_repeat_ngram_size, repetition_penalty and the DRY
    settings; `breakers` are the tokens a DRY repeat never spans."""
    num_beams, max_new_tokens = params.num_beams, params.max_new_tokens
    min_new_tokens, no_repeat_ngram_size = params.min_new_tokens, params.no_repeat_ngram_size
    repetition_penalty = params.repetition_penalty
    dry = DrySettings.of(params)
    if num_beams < 1:
        raise ValueError(f"num_beams must be at least 1, got {num_beams}")
    eos = sorted(model.eos_token_ids)
    batch = model.new_batch()
    logits = model.prefill(batch, [list(prompt_ids)])  # (1, V)
    beams = [Hypothesis([], 0.0)]
    done: list[tuple[float, list[int]]] = []  # (length-normalised score, ids)
    for step in range(max_new_tokens):
        seqs = [list(prompt_ids) + b.ids for b in beams]
        logp = step_scores(logits, seqs, step, min_new_tokens, no_repeat_ngram_size, repetition_penalty, eos,
                           dry, breakers)
        total = logp + torch.tensor([b.score for b in beams], device=logp.device).unsqueeze(1)  # (beams, V)
        top = torch.topk(total.flatten(), min(2 * num_beams, total.numel()))
        rows, children = [], []
        for score, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
            if score == float("-inf"):
                break
            row, token = divmod(flat, total.shape[1])
            if token in model.eos_token_ids:
                done.append((score / (len(beams[row].ids) + 1), beams[row].ids))
                continue
            rows.append(row)
            children.append(Hypothesis(beams[row].ids + [token], score))
            if len(children) == num_beams:
                break
        done = sorted(done, key=lambda d: d[0], reverse=True)[:num_beams]
        best_live = max((c.score for c in children), default=float("-inf")) / (step + 1)
        if not children or (len(done) == num_beams and done[-1][0] >= best_live):
            break  # no live beam can still beat the finished ones
        model.keep(batch, rows)
        logits = model.decode(batch, torch.tensor([c.ids[-1] for c in children]))
        beams = children
    else:
        done += [(b.score / max(1, len(b.ids)), b.ids) for b in beams]
    if not done:
        return []
    return max(done, key=lambda d: d[0])[1]
