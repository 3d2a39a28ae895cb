"""The no-repeat n-gram ban forbids repeating words, never the second half of a split word."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.hf import HFStepModel, WordStartNoRepeatNGram
from models.ngram_ban import NgramBan, banned_by_ngrams, ngram_free_token_ids
from models.params import GenerationParams
from models.sampling import RowSampling, apply_no_repeat_ngram

BAN_2 = GenerationParams(strategy="greedy", no_repeat_ngram_size=2)


def row_after(model: HFStepModel, text: str) -> RowSampling:
    row = RowSampling.create(BAN_2, model.eos_token_ids, None, model.ngram_free_tokens)
    for token in model.tokenizer.encode(text):
        row.push(token)
    return row


def test_free_tokens_are_exactly_those_that_do_not_start_with_a_space(tiny_gpt2_model: HFStepModel) -> None:
    tokenizer = tiny_gpt2_model.tokenizer
    ids = tokenizer.encode("The lighthouse keeper climbed the stairs at dusk, and lit the great lamp.\nBread")
    assert len(ids) > len("The lighthouse keeper climbed".split())  # words come in pieces
    for token in ids:
        starts_a_word = tokenizer.decode([token])[:1].isspace()
        assert (token in tiny_gpt2_model.ngram_free_tokens) is not starts_a_word, tokenizer.decode([token])
    assert not tiny_gpt2_model.eos_token_ids & tiny_gpt2_model.ngram_free_tokens
    assert ngram_free_token_ids(tokenizer) == tiny_gpt2_model.ngram_free_tokens


def test_a_long_word_can_be_written_twice_under_a_2_gram_ban(tiny_gpt2_model: HFStepModel) -> None:
    word = tiny_gpt2_model.tokenizer.encode(" lighthouse")
    assert len(word) >= 2
    row = row_after(tiny_gpt2_model, " the lighthouse keeper saw a")
    row.push(word[0])  # " lighthouse" begins again
    assert word[1] in banned_by_ngrams(row.generated, 2)  # what a token-level ban would forbid
    logits = apply_no_repeat_ngram(torch.zeros(1, tiny_gpt2_model.vocab_size), [row])
    assert logits[0, word[1]] == 0.0


def test_a_repeated_pair_of_words_is_still_banned(tiny_gpt2_model: HFStepModel) -> None:
    the, lamp = (tiny_gpt2_model.tokenizer.encode(w)[0] for w in (" the", " lamp"))
    row = row_after(tiny_gpt2_model, " the lamp was lit and the")
    logits = apply_no_repeat_ngram(torch.zeros(1, tiny_gpt2_model.vocab_size), [row])
    assert row.generated[-1] == the and logits[0, lamp] == float("-inf")
    assert (logits == float("-inf")).sum() == 1


def test_the_beam_path_bans_the_same_tokens_as_an_engine_row(tiny_gpt2_model: HFStepModel) -> None:
    prompt = tiny_gpt2_model.tokenizer.encode("Topic: a lighthouse.")
    for text in [" the lighthouse keeper saw a light", " the lamp was lit and the", " at dusk, at dusk,"]:
        row = row_after(tiny_gpt2_model, text)
        ids = torch.tensor([prompt + row.generated])
        processor = WordStartNoRepeatNGram(2, len(prompt), tiny_gpt2_model.ngram_free_tokens)
        from_beam = processor(ids, torch.zeros(1, tiny_gpt2_model.vocab_size))  # type: ignore[arg-type]
        from_row = apply_no_repeat_ngram(torch.zeros(1, tiny_gpt2_model.vocab_size), [row])
        assert torch.equal(from_beam, from_row), text


@settings(max_examples=300, deadline=None)
@given(seq=st.lists(st.integers(0, 5), max_size=40), n=st.integers(0, 4),
       free=st.frozensets(st.integers(0, 5), max_size=2))
def test_the_incremental_ban_forbids_exactly_the_tokens_that_complete_a_written_ngram(
        seq: list[int], n: int, free: frozenset[int]) -> None:
    ban = NgramBan(n, free)
    for end in range(len(seq) + 1):
        written = seq[:end]
        # The definition, by brute force: every n-gram in `written` whose first n-1 tokens are
        # the last n-1 written bans its last token, unless that token is free.
        expected = {tuple(written[i:i + n])[-1] for i in range(len(written) - n + 1)
                    if n > 0 and tuple(written[i:i + n - 1]) == tuple(written[len(written) - n + 1:])
                    and written[i + n - 1] not in free} if n > 0 and len(written) >= n else set()
        assert ban.banned() == expected == banned_by_ngrams(written, n, free)
        if end < len(seq):
            ban.push(seq[end])
