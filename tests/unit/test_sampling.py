"""The sampling pipeline: top-p rows sort only their candidates, and draw exactly as with a full sort."""

from __future__ import annotations

import torch

from models.params import GenerationParams
from models.sampling import CANDIDATES, _draw, choose_tokens
from models.sampling import RowSampling as Row

TOP_P = GenerationParams(strategy="top_p", top_p=0.9)
VOCAB = 5000


def rows(params: GenerationParams, n: int, seed: int = 0) -> list[Row]:
    return [Row.create(params, frozenset(), seed + i) for i in range(n)]


def nucleus(logits: torch.Tensor, top_p: float) -> set[int]:
    """The reference: sort everything, keep the smallest prefix holding top_p of the mass."""
    probs, order = torch.softmax(logits, -1).sort(descending=True)
    before = probs.cumsum(-1) - probs
    return set(order[before < top_p].tolist())


def test_candidates_draw_the_same_tokens_as_a_full_sort() -> None:
    torch.manual_seed(0)
    logits = torch.randn(16, VOCAB) * 4  # peaked: each nucleus fits in the candidates
    assert all(len(nucleus(row, 0.9)) < CANDIDATES for row in logits)
    assert _draw(logits, rows(TOP_P, 16), CANDIDATES) == _draw(logits, rows(TOP_P, 16), VOCAB)


def test_a_nucleus_wider_than_the_candidates_is_drawn_from_everything() -> None:
    torch.manual_seed(1)
    logits = torch.randn(8, VOCAB) * 0.1  # nearly flat: the nucleus holds thousands of tokens
    wide = [nucleus(row, 0.9) for row in logits]
    assert all(len(n) > CANDIDATES for n in wide)
    picks = [_draw(logits, rows(TOP_P, 8, seed), CANDIDATES) for seed in range(0, 200, 8)]
    assert all(token in wide[i] for draw in picks for i, token in enumerate(draw))
    beyond = {token for draw in picks for token in draw} - {int(i) for row in logits
                                                             for i in row.topk(CANDIDATES).indices}
    assert beyond, "never drew past the candidates: the fallback did not run"


def test_greedy_top_k_and_top_p_rows_share_one_batch() -> None:
    torch.manual_seed(2)
    logits = torch.randn(3, VOCAB) * 3
    mixed = rows(GenerationParams(strategy="greedy"), 1) + rows(GenerationParams(strategy="top_k", top_k=1), 1) \
        + rows(TOP_P.replace(top_p=0.01), 1)
    assert choose_tokens(logits.clone(), mixed) == logits.argmax(-1).tolist()
