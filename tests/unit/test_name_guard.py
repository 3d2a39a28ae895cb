"""The story's names are spared: DRY, the no-repeat ban and the repetition penalty let a row
write a name again, and go on penalising everything else as before."""

from __future__ import annotations

import torch

from models.name_guard import NameGuard, name_guard
from models.params import GenerationParams
from models.sampling import RowSampling, apply_dry_penalty, apply_no_repeat_ngram, apply_repetition_penalty

SAID, KAGE, MRO, SU, THE, END = 3, 7, 8, 9, 4, 5
NAME = [KAGE, MRO, SU]  # "Kagemrosu" in three pieces
PARAMS = GenerationParams(no_repeat_ngram_size=2, dry_multiplier=0.8, dry_allowed_length=1, repetition_penalty=1.3)


def row(names: NameGuard | None) -> RowSampling:
    """A row whose story said "said Kagemrosu the end" and who has just written "said Kagemro"."""
    sampling = RowSampling.create(PARAMS, frozenset({0}), None, context=[SAID, *NAME, THE, END, SAID],
                                  names=names)
    for token in (SAID, KAGE, MRO):
        sampling.push(token)
    return sampling


def penalised(process: object, sampling: RowSampling) -> torch.Tensor:
    logits = torch.ones(1, 12)
    return process(logits, [sampling])[0]  # type: ignore[operator]


def test_dry_spares_the_token_that_continues_a_name_and_no_other() -> None:
    guarded, plain = row(NameGuard([NAME])), row(None)
    assert penalised(apply_dry_penalty, plain)[SU] < 1  # "su" would extend a repeat: penalised
    assert penalised(apply_dry_penalty, guarded)[SU] == 1  # but it finishes a name


def written(tokens: tuple[int, ...], names: NameGuard | None) -> RowSampling:
    sampling = RowSampling.create(PARAMS, frozenset({0}), None, names=names)
    for token in tokens:
        sampling.push(token)
    return sampling


def test_the_no_repeat_ban_never_forbids_the_rest_of_a_name_begun() -> None:
    again = (SAID, KAGE, MRO, SU, THE, KAGE)  # "Kagemrosu the Kage...": "mro" would repeat "Kage mro"
    assert penalised(apply_no_repeat_ngram, written(again, None))[MRO] == float("-inf")
    assert penalised(apply_no_repeat_ngram, written(again, NameGuard([NAME])))[MRO] == 1


def test_a_names_first_token_is_penalised_as_any_word_so_a_name_cannot_loop() -> None:
    scores = penalised(apply_repetition_penalty, written((SAID, KAGE, MRO, SU, THE, KAGE, MRO), NameGuard([NAME])))
    assert scores[SU] == 1  # the name's end: spared
    assert scores[KAGE] < 1 and scores[SAID] < 1  # beginning it again, or any other word: penalised


def test_a_backend_gives_a_names_pieces_with_and_without_a_space() -> None:
    def pieces(name: str) -> list[list[int]]:
        return [[1, 2]] if name == "Kagemrosu" else []

    guard = name_guard(pieces, ("Kagemrosu", "Nobody"))
    assert guard is not None and guard.spared([9, 1]) == {2} and guard.spared([9]) == set()
    assert name_guard(pieces, ()) is None and name_guard(None, ("Kagemrosu",)) is None
