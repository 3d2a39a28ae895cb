"""bench.story's measures: what a reader of a long story would call meta-talk, retelling, a
followed direction, a kept name and an invented word."""

from __future__ import annotations

import re

import pytest
import torch

from bench.story_directions import DIRECTIONS, directions_for
from bench.story_measures import (
    RETELL_COSINE,
    followed,
    invented_words,
    keeps_name,
    meta_talk,
    name_words,
    retold,
    reused_phrases,
    talks_about_story,
    unfinished_lines,
)

# Continuations SmolLM2 wrote that talk about the story, and ways of rephrasing them that the
# engine's banned phrases do not block.
TALKS_ABOUT_IT = [
    "The story continues, and I am pleased to share the next part of Elena's journey with you.",
    "In this tale, I will continue to explore the themes of loss and hope that shaped the keeper's life.",
    "This is not a retelling of the previous story but a new beginning for the baker and her shop.",
    "And so the tale goes on, as the sisters walk deeper into the dunes.",
    "In the following paragraphs, we will learn about the clockmaker's childhood.",
    "1. The keeper climbs the stairs.\n2. He reads the message again.",
    "Title: The Lighthouse Keeper's Secret\n\nThe waves crashed against the rocks.",
    "The sea was calm that night. #adventure #lighthouse",
    "Dear reader, you may wonder what became of the old bottle.",
    "As the narrative unfolds, the protagonist realises that the message was meant for her.",
    "Sure, here is the next paragraph of the story about the dragon.",
    "In conclusion, the baker learned that courage matters more than bread.",
    # bench.story's own reading of SmolLM2 (3 stories x 5 paragraphs, 2026-12-08):
    "The story of a bakery who opens a haunted market stall is a tale of desperation, curiosity, and the "
    "power to uncover secrets that have been hidden for so long.",
    "I made my way through the narrow passageways that lined the shore. And that was where the story began.",
    "The story begins with the enigmatic figure, a man shrouded in shadows and lost in his own thoughts.",
    "In this scene, the story of a baker who opens his own shop in an abandoned market street is interrupted "
    "by the arrival of an old music box with a glowing glass.",
    "In this next paragraph, a soldier knocks on the doors of a small bakery in an abandoned street.",
]
# Narration that uses the same words without the text talking about itself.
TELLS_IT = [
    "That night she told the story of her father, who had sailed north and never come home.",
    '"Let me in!" she cried, pounding on the door. "Here is the key you lost."',
    "They fought side by side until the end.",
    "By the fire, the old man told them the story of how the bridge fell.",
    "Behind the shelves a secret passage led down into the dark.",
    "In this part of the forest the trees grew so close that no light reached the ground.",
    "Moving to the farmhouse was the next chapter of their lives, and nobody was ready for it.",
    "As we followed the river, the sky turned the colour of ash.",
    "Of course, I knew he was lying; I will tell you why another time, I thought.",
    "Her grandmother knew every tale about the mountain, and she loved this one most of all.",
    "Kagemrosu lifted the lantern and let the light fall across the water.",
    "The old woman planted the last seed and watched the earth turn silver under the moon.",
]


@pytest.mark.parametrize("paragraph", TALKS_ABOUT_IT)
def test_a_paragraph_that_talks_about_the_story_is_caught(paragraph: str) -> None:
    assert talks_about_story(paragraph), paragraph


@pytest.mark.parametrize("paragraph", TELLS_IT)
def test_narration_that_uses_story_words_is_not_meta_talk(paragraph: str) -> None:
    assert meta_talk(paragraph) == []


def test_meta_talk_names_the_phrase_it_found() -> None:
    found = meta_talk("The tale goes on. #quest")
    assert any("The tale goes on" in phrase for phrase in found)
    assert any("#quest" in phrase for phrase in found)


def test_a_next_paragraph_begun_and_cut_off_is_unfinished() -> None:
    paragraph = "He had always believed his mission was about preserving history.\n\nAlex"
    assert unfinished_lines(paragraph) == ["Alex"]
    assert unfinished_lines('He said "Lassosque-Aria-The-Fiona-') != []


def test_finished_prose_and_closing_quotes_are_not_unfinished() -> None:
    paragraph = 'She smiled. "I am not alone."\n\nThe door opened at last\u2026 Nobody came in!'
    assert unfinished_lines(paragraph) == []


def test_misspelt_and_made_up_words_are_invented() -> None:
    text = "The waves were tremenduously loud, a delugeous roar against the lighthouse."
    assert invented_words(text) == ["tremenduously", "delugeous"]


def test_names_real_words_and_short_words_are_not_invented() -> None:
    text = "Kagemrosu's lighthouse stood on a sun-bleached cliff; he didn't mind the fog, ok?"
    assert invented_words(text) == []


def test_a_continuation_that_uses_a_name_from_the_opening_keeps_it() -> None:
    words = name_words(["Kagemrosu", "Elena Rosa"])
    assert keeps_name(words, "Rosa waited on the steps.")
    assert keeps_name(words, "Kagemrosu's lantern flickered.")


def test_a_drifted_or_lower_case_name_is_not_kept() -> None:
    words = name_words(["Kagemrosu"])
    assert not keeps_name(words, "Kagemrosokai climbed the stairs.")
    assert not keeps_name(words, "kagemrosu climbed the stairs.")


def bag_of_words(texts: list[str]) -> torch.Tensor:
    """A fake embedder: unit vectors over a vocabulary of the texts' own words, so sharing
    words is closeness."""
    vocabulary = sorted({w for t in texts for w in re.findall(r"[a-z]+", t.lower())})
    vectors = torch.zeros(len(texts), len(vocabulary))
    for row, text in enumerate(texts):
        for word in re.findall(r"[a-z]+", text.lower()):
            vectors[row, vocabulary.index(word)] += 1
    return torch.nn.functional.normalize(vectors, dim=-1)


def test_a_paragraph_closest_to_its_own_direction_followed_it() -> None:
    paragraphs = ["opening", "the storm tore the roof away", "a stranger came with a warning"]
    directions: list[str | None] = [None, "storm roof", "stranger warning"]

    def embed(texts: list[str]) -> torch.Tensor:
        return bag_of_words(texts + paragraphs + [d for d in directions if d])[: len(texts)]

    assert followed(paragraphs, directions, embed) == [True, True]


def test_a_paragraph_closer_to_another_direction_did_not_follow_its_own() -> None:
    paragraphs = ["opening", "a stranger came with a warning", "the storm tore the roof away"]
    directions: list[str | None] = [None, "storm roof", "stranger warning"]

    def embed(texts: list[str]) -> torch.Tensor:
        return bag_of_words(texts + paragraphs + [d for d in directions if d])[: len(texts)]

    assert followed(paragraphs, directions, embed) == [False, False]


def test_a_paragraph_closer_to_a_direction_the_story_never_had_did_not_follow_of_all() -> None:
    paragraphs = ["opening", "a bell rang in the church tower", "the storm tore the roof away"]
    directions: list[str | None] = [None, "storm roof", "stranger warning"]
    rivals = ["church bell tower", "storm roof", "stranger warning"]

    def embed(texts: list[str]) -> torch.Tensor:
        return bag_of_words(texts + paragraphs + rivals)[: len(texts)]

    assert followed(paragraphs, directions, embed, rivals) == [False, False]


def test_a_continuation_that_keeps_the_opening_s_phrases_reuses_them() -> None:
    paragraphs = [
        "You were a brilliant and resourceful lighthouse keeper on a mission to find a message.",
        "Lysael, a brilliant and resourceful lighthouse keeper, was on a mission to find a message.",
        "Years later a fisherman's daughter sailed to the island and knocked on his door.",
    ]
    reretold, moved_on = reused_phrases(paragraphs)
    assert reretold > 0.5 and moved_on == 0.0


def test_every_story_draws_its_own_distinct_directions() -> None:
    first, second = directions_for(1, 9), directions_for(2, 9)
    assert len(set(first)) == 9 and first != second
    assert directions_for(1, 9) == first  # a rerun gives the same sequence


@pytest.fixture(scope="module")
def minilm():
    from bench.quality import Embedder

    return Embedder()


def test_a_paragraph_said_again_in_other_words_is_a_retelling(minilm) -> None:
    paragraphs = [
        "The lighthouse keeper found a bottle on the beach with a message inside.",
        "On the beach, the lighthouse keeper discovered a bottle holding a message.",
        "Years later a fisherman's daughter sailed to the island and knocked on his door.",
    ]
    closest = retold(paragraphs, minilm)
    assert closest[0] >= RETELL_COSINE > closest[1]


def test_no_two_bench_directions_look_alike_to_minilm(minilm) -> None:
    vectors = minilm(list(DIRECTIONS))
    similarity = vectors @ vectors.T - 2 * torch.eye(len(DIRECTIONS))
    assert len(DIRECTIONS) >= 20
    assert float(similarity.max()) < 0.5
