"""The incremental detokenizer gives the text a full decode gives, one token at a time."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.engine.detokenizer import DEFAULT_CONTEXT_TOKENS, REPLACEMENT, IncrementalDetokenizer
from models.text.tokenizer import detokenize

TEXTS = [
    "The keeper climbed the stairs and lit the lamp.",
    "Zoë's café served crème brûlée; naïve façade, Ångström.",
    "漢字とかな、한국어 and 🐉🌊 with a family: 👩\u200d👩\u200d👧 and e\u0301.",
    "  leading spaces, then\n\nnew paragraphs\tand tabs  ",
]


def assert_follows_full_decode(decode: Any, ids: list[int], context: int | None) -> IncrementalDetokenizer:
    detokenizer = IncrementalDetokenizer(decode, context)
    for count, token in enumerate(ids, 1):
        detokenizer.push(token)
        full = decode(ids[:count])
        assert full.startswith(detokenizer.text), (full, detokenizer.text)
        if not full.endswith(REPLACEMENT):  # nothing is held back once every character is whole
            assert detokenizer.text == full
    assert detokenizer.final_text() == decode(ids)
    return detokenizer


@pytest.mark.parametrize("text", TEXTS)
def test_text_equals_a_full_decode_after_every_token(tiny_gpt2_model: Any, text: str) -> None:
    ids = tiny_gpt2_model.tokenizer.encode(text, add_special_tokens=False)
    assert len(ids) > len(text.split())  # the tiny byte-level vocabulary splits characters into bytes
    detokenizer = assert_follows_full_decode(tiny_gpt2_model.decode_text, ids, DEFAULT_CONTEXT_TOKENS)
    assert detokenizer.text == text


def test_a_half_character_is_held_back_until_its_last_byte(tiny_gpt2_model: Any) -> None:
    ids = tiny_gpt2_model.tokenizer.encode("a 🐉", add_special_tokens=False)
    detokenizer = IncrementalDetokenizer(tiny_gpt2_model.decode_text, DEFAULT_CONTEXT_TOKENS)
    shown = []
    for token in ids:
        detokenizer.push(token)
        shown.append(detokenizer.text)
    assert REPLACEMENT not in "".join(shown)
    assert len(ids) >= 4 and shown[-1] == "a 🐉"  # the dragon is four bytes, each a token here
    assert shown[-4:-1] == [shown[-4]] * 3 and "🐉" not in shown[-2]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 299), max_size=40))
def test_any_ids_at_all_end_in_the_full_decode(tiny_gpt2_model: Any, ids: list[int]) -> None:
    assert_follows_full_decode(tiny_gpt2_model.decode_text, ids, DEFAULT_CONTEXT_TOKENS)


def test_a_decode_that_depends_on_all_the_text_is_decoded_whole() -> None:
    """The word-level vocabularies put quotes by counting every earlier one: no window will do."""
    words = ["he", "said", '"', "come", "in", '"', "and", '"', "sit", '"', "."]

    def decode(ids: list[int]) -> str:
        return detokenize([words[i] for i in ids])

    assert_follows_full_decode(decode, list(range(len(words))), context=None)
