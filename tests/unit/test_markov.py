"""The Markov chain backend: smoothing, impossible words, perplexity and the step interface."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from models.base import Prompt, StepModel, UnsupportedStrategy
from models.markov import MarkovBackend, MarkovChain
from models.params import GenerationParams
from models.text.data import Example
from models.text.tokenizer import NEVER_GENERATED, Vocab

EXAMPLES = [
    Example("cats", "Cats purr on warm mats. Cats chase mice."),
    Example("dogs", "Dogs bark at the post. Dogs chase cats."),
    Example("owls", "Owls hoot at night. Owls chase mice."),
]


def chain(order: int = 3) -> MarkovChain:
    vocab = Vocab.build([e.text + " " + e.topic for e in EXAMPLES] + ["zebra"], 100, min_count=1)
    return MarkovChain.train(EXAMPLES, vocab, order)


def test_logits_are_minus_infinity_exactly_on_words_that_can_never_be_written() -> None:
    backend = MarkovBackend(chain())
    logits = backend.prefill(backend.new_batch(), [backend.encode_prompt(Prompt("cats"), 20)])[0]
    never = set(backend.vocab.special_ids(NEVER_GENERATED))
    assert logits.dtype == torch.float32
    assert {i for i in range(backend.vocab_size) if torch.isneginf(logits[i])} == never


def test_a_word_never_seen_as_text_is_unlikely_but_possible() -> None:
    c = chain()
    ctx = c.context_of(c.vocab.prompt_ids(Prompt("cats"), 20))
    zebra, cats = c.vocab.stoi["zebra"], c.vocab.stoi["Cats"]
    assert 0 < c.prob(ctx, zebra) < c.prob(ctx, cats)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_next_word_distribution_sums_to_one_and_matches_prob(order: int) -> None:
    c = chain(order)
    ctx = c.context_of(c.vocab.prompt_ids(Prompt("dogs"), 20) + [c.vocab.stoi["Dogs"]])
    dist = c.distribution(ctx)
    assert float(dist.sum()) == pytest.approx(1.0)
    for word in (c.vocab.stoi["bark"], c.vocab.stoi["mice"], c.vocab.eos, c.vocab.unk):
        assert float(dist[word]) == pytest.approx(c.prob(ctx, word))


def test_perplexity_is_finite_on_unseen_words_and_lower_on_familiar_text() -> None:
    c = chain()
    familiar = c.perplexity([Example("owls", "Owls chase mice.")])
    strange = c.perplexity([Example("giraffes", "Giraffes never chase zebra at the mats.")])
    assert math.isfinite(strange) and 1 < familiar < strange
    assert math.isfinite(c.perplexity(["a bare paragraph without a topic"]))


def test_topic_words_seed_the_first_words() -> None:
    c = chain(order=3)
    ctx = c.context_of(c.vocab.prompt_ids(Prompt("cats"), 20))
    assert ctx == (c.vocab.stoi["cats"], c.vocab.sep)
    assert c.prob(ctx, c.vocab.stoi["Cats"]) > c.prob(ctx, c.vocab.stoi["Owls"])


def test_rows_joining_and_leaving_give_the_same_logits_as_running_alone() -> None:
    backend = MarkovBackend(chain())
    a, b = (backend.encode_prompt(Prompt(t), 20) for t in ("cats", "owls"))
    word = backend.vocab.stoi
    batch = backend.new_batch()
    backend.prefill(batch, [a])
    backend.prefill(batch, [b])
    backend.decode(batch, torch.tensor([word["Cats"], word["Owls"]]))
    backend.keep(batch, [1])
    joint = backend.decode(batch, torch.tensor([word["hoot"]]))[0]
    alone_batch = backend.new_batch()
    backend.prefill(alone_batch, [b])
    backend.decode(alone_batch, torch.tensor([word["Owls"]]))
    assert torch.equal(joint, backend.decode(alone_batch, torch.tensor([word["hoot"]]))[0])


def test_beam_search_is_refused_with_a_message_for_users() -> None:
    backend = MarkovBackend(chain())
    with pytest.raises(UnsupportedStrategy, match="markov"):
        backend.beam_search([1, 2, 3], GenerationParams(strategy="beam", num_beams=4))


def test_order_outside_one_to_five_is_rejected() -> None:
    with pytest.raises(ValueError, match="order must be in 1..5"):
        MarkovChain(chain().vocab, 6)


def test_load_builds_the_chain_from_a_corpus_file(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps({"topic": e.topic, "text": e.text}) + "\n" for e in EXAMPLES * 3))
    backend = MarkovBackend.from_corpus(path, order=2)
    assert isinstance(backend, StepModel)
    assert backend.chain.order == 2 and backend.eos_token_ids == frozenset({backend.vocab.eos})
