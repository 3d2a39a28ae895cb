"""Long stories move forward: a model that copies its context cannot loop, and the continuation
prompt shows the story as a story, cut by whole paragraphs."""

from __future__ import annotations

from bot.engine.requests import GenerationRequest
from bot.engine.worker import Engine
from models.base import Prompt
from models.params import GenerationParams
from models.prompts import window
from tests.copying_model import CopyingModel, word_grams

# Only DRY stands between the copying model and a copy: no n-gram ban, no repetition penalty.
COPYING = GenerationParams(model="copier", strategy="greedy", max_new_tokens=12, min_new_tokens=12,
                           no_repeat_ngram_size=0, repetition_penalty=1.0, stop_at_paragraph=False)
STORY = "the keeper climbed stairs lamp storm harbour boats ropes night sea light"


async def continue_story(params: GenerationParams, history: list[str], topic: str = "a keeper") -> str:
    model = CopyingModel()
    async with Engine(lambda name: model, "copier") as engine:  # type: ignore[arg-type, return-value]
        event = await engine.submit(GenerationRequest(Prompt(topic, history), params)).result()
    assert event.kind == "done"
    return event.text


async def test_a_copying_model_copies_the_history_when_dry_is_off() -> None:
    text = await continue_story(COPYING.replace(dry_multiplier=0.0), [STORY])
    assert text == STORY  # the worst case is real: the model writes the last paragraph again


async def test_a_copying_model_cannot_copy_eight_words_of_the_history_when_dry_is_on() -> None:
    history = [STORY, "gull wind cold door glass tide shore sand boat hand paper ink"]
    text = await continue_story(COPYING, history)  # dry on by default
    assert len(text.split()) == 12
    assert not word_grams(text) & set().union(*(word_grams(p) for p in history)), text


async def test_a_new_storys_first_paragraph_is_written_without_dry() -> None:
    """DRY is for continuations: the first paragraph may echo its topic (the copying model copies it)."""
    assert await continue_story(COPYING, [], topic=STORY) == STORY
    beam = COPYING.replace(strategy="beam", num_beams=2)
    assert await continue_story(beam, [], topic=STORY) == STORY
    assert not word_grams(await continue_story(beam, [STORY])) & word_grams(STORY)


async def test_variants_and_sampled_rows_honour_dry_too() -> None:
    params = COPYING.replace(strategy="sample", temperature=0.3, seed=3, variants=2)
    text = await continue_story(params, [STORY])
    assert not word_grams(text) & word_grams(STORY), text


def test_the_window_keeps_the_opening_and_the_latest_paragraphs() -> None:
    story = [f"p{i} " + "w " * 9 for i in range(10)]  # ten paragraphs of ten words

    def fits(kept: list[str]) -> bool:
        return sum(len(p.split()) for p in kept) <= 45

    kept, gap = window(story, fits)
    assert kept == [story[0], *story[-3:]] and gap
    assert window(story[:4], fits) == (story[:4], False)
    assert window(story, lambda kept: len(kept) == 1) == ([story[-1]], False)
