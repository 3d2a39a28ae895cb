"""No retelling: a continuation's first sentence that opens like an earlier paragraph is written again."""

from __future__ import annotations

import torch

from bot.engine.requests import GenerationRequest
from bot.engine.retell import MAX_TRIES, RetellGuard, first_sentence_end, opening
from bot.engine.worker import Engine
from models.base import Prompt
from models.params import GenerationParams
from tests.copying_model import RewindingCopyingModel, final_and_pieces

# The copying model writes the last paragraph again word for word: the worst retelling there is.
STORY = "the keeper climbed stairs lamp storm harbour boats ropes night sea light"
COPYING = GenerationParams(model="copier", strategy="greedy", max_new_tokens=12, min_new_tokens=12,
                           no_repeat_ngram_size=0, repetition_penalty=1.0, dry_multiplier=0.0,
                           stop_at_paragraph=False, retell_check=True)


def letters(texts: list[str]) -> torch.Tensor:
    """A stand-in for MiniLM: unit vectors of letter counts (texts alike are close)."""
    vectors = torch.zeros(len(texts), 26)
    for i, text in enumerate(texts):
        for char in text.lower():
            if "a" <= char <= "z":
                vectors[i, ord(char) - 97] += 1
    return torch.nn.functional.normalize(vectors, dim=-1)


class Punctuating(RewindingCopyingModel):
    """The copying model with a full stop after "stairs" (its words have no punctuation)."""

    def decode_text(self, ids: list[int]) -> str:
        return super().decode_text(ids).replace("stairs", "stairs.")


async def write(params: GenerationParams) -> tuple[str, list[str]]:
    model = Punctuating()
    async with Engine(lambda name: model, "copier", sentence_embedder=lambda: letters) as engine:
        return await final_and_pieces(engine, GenerationRequest(Prompt("a keeper", [STORY]), params))


async def test_a_continuation_that_opens_like_an_earlier_paragraph_is_written_again() -> None:
    copied, _ = await write(COPYING.replace(retell_check=False))
    assert opening(copied) == opening(STORY)  # without the check it retells
    text, pieces = await write(COPYING)
    assert opening(text) != opening(STORY)
    assert "".join(pieces).split() == text.split()  # no dropped try was ever shown


def test_after_its_tries_a_guard_keeps_the_least_retelling_one() -> None:
    guard = RetellGuard(letters(["the keeper climbed the stairs"]), frozenset(), letters, threshold=0.0)
    tries = [("the keeper climbed the stairs", [1]), ("a gull flew over the sea wall", [2]),
             ("the keeper climbed stairs again", [3])]
    verdicts = [guard.judge(sentence, tokens) for sentence, tokens in tries]
    assert verdicts[:-1] == [None] * (MAX_TRIES - 1) and verdicts[-1] == [2]
    assert guard.settled


def test_a_first_sentence_is_complete_at_its_end_mark_and_has_some_words() -> None:
    assert first_sentence_end("Yes. The keeper climbed the stairs. Then") == len("Yes. The keeper climbed the stairs.")
    assert first_sentence_end("The keeper climbed the stairs") is None
    assert first_sentence_end("The keeper climbed the stairs", ended=True) == len("The keeper climbed the stairs")
