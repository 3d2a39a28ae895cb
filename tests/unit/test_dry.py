"""DRY (models.dry): its penalties against a plain reference, and the beam paths honouring it."""

from __future__ import annotations

import random

import pytest
import torch

from models.base import Prompt
from models.dry import DrySettings, dry_logits, sequence_breaker_ids
from models.hf import DryLogitsProcessor, HFStepModel
from models.params import GenerationParams, SettingError
from models.sampling import RowSampling, apply_dry_penalty
from tests.copying_model import CopyingModel, word_grams

ON = DrySettings(multiplier=0.8, base=1.75, allowed_length=2, penalty_last_n=-1)


def reference_penalties(seq: list[int], breakers: set[int], s: DrySettings, vocab: int) -> list[float]:
    """DRY written the plain way (as text-generation-webui does): for each earlier occurrence of the
    last token, walk back while the tokens agree and no breaker intervenes; the token after that
    occurrence would extend the repeat; the longest repeat per token sets its penalty."""
    window = seq if s.penalty_last_n < 0 else seq[max(0, len(seq) - s.penalty_last_n):]
    longest: dict[int, int] = {}
    if window and window[-1] not in breakers:
        for i in range(len(window) - 1):
            following = window[i + 1]
            if window[i] != window[-1] or following in breakers:
                continue
            n = 1
            while i - n >= 0 and window[-1 - n] not in breakers and window[i - n] == window[-1 - n]:
                n += 1
            longest[following] = max(longest.get(following, 0), n)
    out = [0.0] * vocab
    for token, n in longest.items():
        if n >= s.allowed_length:
            out[token] = s.multiplier * s.base ** (n - s.allowed_length)
    return out


def row_penalties(context: list[int], written: list[int], s: DrySettings, breakers: frozenset[int],
                  vocab: int) -> list[float]:
    """What the engine's row subtracts: a row made from `context`, fed `written` one token at a time."""
    params = GenerationParams(dry_multiplier=s.multiplier, dry_base=s.base, dry_allowed_length=s.allowed_length,
                              dry_penalty_last_n=s.penalty_last_n)
    row = RowSampling.create(params, frozenset(), None, context=context, sequence_breakers=breakers)
    for token in written:
        row.push(token)
    return (-apply_dry_penalty(torch.zeros(1, vocab), [row])[0]).tolist()


def test_penalty_on_a_hand_made_sequence_equals_the_reference() -> None:
    # a b c d | x a b c  (| = breaker 9): "a b c" repeats, so d (which followed it) is penalised
    # for a repeat of 3: 0.8 * 1.75 ** (3 - 2) = 1.4; the repeat of "c" alone (1 < 2) costs nothing.
    a, b, c, d, x, bar = 1, 2, 3, 4, 5, 9
    context, written = [a, b, c, d, bar, x], [a, b, c]
    got = row_penalties(context, written, ON, frozenset({bar}), 10)
    assert got == pytest.approx(reference_penalties(context + written, {bar}, ON, 10))
    assert got[d] == pytest.approx(1.4) and sum(got) == pytest.approx(1.4)


def test_penalty_grows_exponentially_and_a_breaker_ends_the_repeat() -> None:
    seq = [1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6]  # "1..6" repeats: 7 would extend a repeat of 6
    got = row_penalties(seq[:7], seq[7:], ON, frozenset({9}), 10)
    assert got[7] == pytest.approx(0.8 * 1.75 ** 4)
    broken = [1, 2, 3, 9, 5, 6, 7, 1, 2, 3, 9, 5, 6]  # the breaker 9 cuts the repeat to "5 6"
    got = row_penalties(broken[:7], broken[7:], ON, frozenset({9}), 10)
    assert got[7] == pytest.approx(0.8) and sum(got) == pytest.approx(0.8)


@pytest.mark.parametrize("trial", range(40))
def test_random_sequences_match_the_reference_at_every_step(trial: int) -> None:
    rng = random.Random(trial)
    s = DrySettings(rng.choice([0.5, 0.8, 2.0]), rng.choice([1.0, 1.75, 3.0]), rng.randint(1, 4),
                    rng.choice([-1, 6, 15, 50]))
    breakers = frozenset({0})
    context = [rng.randint(0, 5) for _ in range(rng.randint(0, 40))]
    written = [rng.randint(0, 5) for _ in range(rng.randint(1, 25))]
    for cut in range(len(written) + 1):
        seq = context + written[:cut]
        assert row_penalties(context, written[:cut], s, breakers, 6) == pytest.approx(
            reference_penalties(seq, set(breakers), s, 6)), seq
    # The beam path's whole-sequence computation agrees too.
    seqs = torch.tensor([context + written])
    expected = reference_penalties(context + written, set(breakers), s, 6)
    assert (-dry_logits(torch.zeros(1, 6), seqs, s, breakers)[0]).tolist() == pytest.approx(expected)


def test_off_means_no_penalty_and_settings_are_checked() -> None:
    seq = [1, 2, 3, 4, 1, 2, 3]
    assert row_penalties(seq, [], DrySettings(0.0), frozenset(), 5) == [0.0] * 5
    assert row_penalties(seq, [], DrySettings(0.8, penalty_last_n=0), frozenset(), 5) == [0.0] * 5
    with pytest.raises(SettingError, match="dry_multiplier"):
        GenerationParams().replace(dry_multiplier=-1)
    with pytest.raises(SettingError, match="dry_allowed_length"):
        GenerationParams().replace(dry_allowed_length=0)


def test_breakers_are_tokens_whose_text_holds_one_plus_special_tokens(tiny_gpt2_model: HFStepModel) -> None:
    assert sequence_breaker_ids(["a", "b\n", "c:", '"d', "e*", "f"], special=[5]) == {1, 2, 3, 4, 5}
    tokenizer = tiny_gpt2_model.tokenizer
    for token in tiny_gpt2_model.sequence_breaker_tokens:
        text = tokenizer.decode([token])
        assert any(b in text for b in "\n:\"*") or token in tokenizer.all_special_ids, repr(text)
    assert tokenizer.encode("\n")[0] in tiny_gpt2_model.sequence_breaker_tokens
    assert tokenizer.encode(" keeper")[0] not in tiny_gpt2_model.sequence_breaker_tokens


STORY = "the keeper climbed stairs lamp storm harbour boats ropes night sea light"


@pytest.mark.parametrize("dry_on", [True, False])
def test_beam_search_honours_dry(dry_on: bool) -> None:
    """The copying model's beams copy the last paragraph whole unless DRY is on."""
    model = CopyingModel()
    prompt = model.encode_prompt(Prompt("a keeper", [STORY]), 12)
    ids = model.beam_search(prompt, _beam_params(3, 12, ON if dry_on else DrySettings(0.0)))
    text = model.decode_text(ids)
    assert len(text.split()) == 12
    assert bool(word_grams(text) & word_grams(STORY)) is not dry_on, text


def test_hf_beam_processor_equals_the_reference() -> None:
    rng = random.Random(1)
    beams = torch.tensor([[rng.randint(0, 7) for _ in range(30)] for _ in range(3)])
    scores = torch.zeros(3, 8)
    got = DryLogitsProcessor(ON, frozenset({0}))(beams, scores.clone())  # type: ignore[arg-type]
    for row in range(3):
        expected = reference_penalties(beams[row].tolist(), {0}, ON, 8)
        assert (-got[row]).tolist() == pytest.approx(expected)


@pytest.mark.parametrize("dry_on", [True, False])
def test_hf_beam_search_applies_dry(tiny_gpt2_model: HFStepModel, dry_on: bool) -> None:
    """The tiny GPT-2 (random weights) falls into loops under beam search; a strong DRY forbids
    extending any repeat of two tokens or more, so no 3-token run of the text occurs twice."""
    model = tiny_gpt2_model
    prompt = model.encode_prompt(Prompt("the lighthouse keeper"), 40)
    strong = DrySettings(multiplier=1000.0, base=1.0, allowed_length=2)
    ids = model.beam_search(prompt, _beam_params(3, 40, strong if dry_on else DrySettings(0.0)))
    seq = prompt + ids
    runs = [tuple(seq[i:i + 3]) for i in range(len(prompt) - 2, len(seq) - 2)]
    free = [r for r in runs if not set(r) & model.sequence_breaker_tokens]
    earlier = {tuple(seq[i:i + 3]) for i in range(len(seq) - 2)}
    repeated = [r for i, r in enumerate(free) if r in {tuple(seq[j:j + 3]) for j in range(len(prompt) - 2 + i)}]
    assert earlier and len(ids) == 40
    assert bool(repeated) is not dry_on, model.decode_text(ids)


def _beam_params(num_beams: int, length: int, dry: DrySettings) -> GenerationParams:
    """Beam settings of exactly `length` tokens, no n-gram ban or CTRL penalty, and `dry`."""
    return GenerationParams(strategy="beam", num_beams=num_beams, max_new_tokens=length, min_new_tokens=length,
                            no_repeat_ngram_size=0, repetition_penalty=1.0, dry_multiplier=dry.multiplier,
                            dry_base=dry.base, dry_allowed_length=dry.allowed_length,
                            dry_penalty_last_n=dry.penalty_last_n)
