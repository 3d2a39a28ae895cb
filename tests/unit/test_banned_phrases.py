"""Banned phrases: never written, never shown and then taken back, for local and cut-off rows."""

from __future__ import annotations

from typing import Any

from bot.engine.banned_phrases import BUILT_IN_PHRASES, BannedPhrases
from bot.engine.requests import GenerationRequest
from bot.engine.worker import Engine
from models.base import Prompt
from models.params import GenerationParams
from tests.copying_model import CopyingModel, RewindingCopyingModel, final_and_pieces

STORY = "the keeper climbed stairs lamp storm harbour boats ropes night sea light"
# The copying model copies the story word for word unless something stops it.
COPYING = GenerationParams(model="copier", strategy="greedy", max_new_tokens=12, min_new_tokens=12,
                           no_repeat_ngram_size=0, repetition_penalty=1.0, dry_multiplier=0.0,
                           stop_at_paragraph=False)


async def write(model: Any, params: GenerationParams) -> tuple[str, list[str]]:
    """The final text and every streamed piece."""
    async with Engine(lambda name: model, "copier") as engine:
        return await final_and_pieces(engine, GenerationRequest(Prompt("a keeper", [STORY]), params))


async def test_a_row_that_writes_a_banned_phrase_rewinds_and_writes_on_another_way() -> None:
    copied, _ = await write(RewindingCopyingModel(), COPYING)
    assert "lamp storm" in copied  # without the ban the model copies it
    text, pieces = await write(RewindingCopyingModel(), COPYING.replace(banned_phrases="lamp storm"))
    assert "lamp storm" not in text and len(text.split()) == 12  # it wrote on: a full paragraph
    # It went back to where the phrase began and wrote another word there.
    assert text.split()[:4] == STORY.split()[:4] and text.split()[4] != "lamp"
    assert "".join(pieces).split() == text.split()  # what was shown was never taken back


async def test_a_row_that_cannot_rewind_ends_its_paragraph_before_the_phrase() -> None:
    text, pieces = await write(CopyingModel(), COPYING.replace(banned_phrases="storm harbour"))
    assert text == "the keeper climbed stairs lamp"
    assert "".join(pieces).split() == text.split()


def test_a_capitalised_phrase_is_banned_only_where_it_starts_a_sentence() -> None:
    banned = BannedPhrases(["The story"])
    assert banned.find("Night fell. The story goes on.") == 12
    assert banned.find("She told the story of her father.") is None
    assert banned.find("The storyteller came.") is None
    assert banned.find("He said, \"The story is true.\"") is None  # dialogue is the characters' own


def test_a_lower_case_phrase_is_banned_anywhere_a_word_starts() -> None:
    banned = BannedPhrases(["a testament to"])
    assert banned.find("It stood as a testament to courage.") == 12
    assert banned.find("It was ata testament to") is None


def test_text_that_may_still_become_a_phrase_is_held_back() -> None:
    banned = BannedPhrases(["a testament to"])
    assert banned.held_from("It stood as a testam", 0) == 12
    assert banned.held_from("It stood as a test.", 0) == len("It stood as a test.")
    assert banned.held_from("The end. The stor", 0) == len("The end. The stor")  # not banned here


def test_the_built_in_list_catches_how_a_small_model_talks_about_its_story() -> None:
    banned = BannedPhrases.for_row(())
    for meta in ("The story continues, and I am pleased to share another one.",
                 "In this tale, I will continue to explore the sea.",
                 "This is not a retelling of the previous story.", "1. The keeper wakes.",
                 "The keeper smiled. #lighthouse"):
        assert banned.find(meta, ended=True) is not None, meta
    assert banned.find("The keeper climbed the stairs and told the story of the storm.", ended=True) is None
    assert "The story" in BUILT_IN_PHRASES
