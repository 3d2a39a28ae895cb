"""The topic LSTM: training, checkpoints, the step backend and beam search, on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models.base import Prompt, StepModel
from models.lstm.backend import LSTMBackend
from models.lstm.model import LSTMConfig, TopicLSTM, load_checkpoint, save_checkpoint
from models.lstm.train import TrainConfig, train
from models.ngram_ban import banned_by_ngrams
from models.params import GenerationParams
from models.text.data import Example, load_examples, split_examples
from models.text.tokenizer import NEVER_GENERATED, Vocab, detokenize, split_words

TINY = LSTMConfig(vocab_size=200, n_embd=16, n_hidden=24, n_layer=2, dropout=0.1, context_window=64)

_FACTS = {
    "cats": "Cats purr and sleep on warm mats. A cat chases mice and climbs trees.",
    "the sea": "The sea is wide and blue. Waves roll onto the sand and the tide turns.",
    "bread": "Bread is baked from flour, water and yeast. The oven makes the crust brown.",
    "trains": "Trains run on rails between cities. The driver blows the whistle at the station.",
    "owls": "Owls hunt at night. An owl turns its head and hoots from the old barn.",
    "snow": "Snow falls in winter. Children build a snowman and throw snowballs in the park.",
}


def tiny_examples(copies: int = 4) -> list[Example]:
    """Paragraphs that share a frame, so a model can learn it from some topics and use it on others."""
    return [
        Example(topic, f"This is about {topic}. {text} That was all about {topic}, part {i}.")
        for i in range(copies)
        for topic, text in _FACTS.items()
    ]


def write_corpus(path: Path, examples: list[Example]) -> Path:
    path.write_text("".join(json.dumps({"topic": e.topic, "text": e.text}) + "\n" for e in examples))
    return path


def tiny_backend(seed: int = 0) -> LSTMBackend:
    torch.manual_seed(seed)
    vocab = Vocab.build([e.text + " " + e.topic for e in tiny_examples()], TINY.vocab_size, min_count=1)
    model = TopicLSTM(LSTMConfig(**{**TINY.__dict__, "vocab_size": len(vocab)}))
    torch.nn.init.normal_(model.copy_bias)  # untrained, but not zero: checkpoints must carry it
    return LSTMBackend(model, vocab)


def test_training_on_a_tiny_corpus_lowers_held_out_loss(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c.jsonl", tiny_examples())
    tc = TrainConfig(epochs=3, batch_size=4, lr=1e-2, patience=10, min_count=1, val_fraction=0.2)
    metrics = train([corpus], tmp_path / "out", tc, TINY)
    losses = [h["val_loss"] for h in metrics["history"]]
    assert losses[-1] < losses[0]
    assert metrics["heldout_perplexity"] > 1
    for name in ("best.pt", "last.pt", "metrics.json", "loss.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0


def test_resume_continues_after_the_last_saved_epoch(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c.jsonl", tiny_examples())
    tc = TrainConfig(epochs=1, batch_size=8, patience=10, min_count=1)
    train([corpus], tmp_path / "out", tc, TINY)
    metrics = train([corpus], tmp_path / "out", TrainConfig(epochs=2, patience=10), TINY, resume=True)
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]


def test_plain_text_paragraphs_train_with_their_first_words_as_topic(tmp_path: Path) -> None:
    text = "\n\n".join(e.text for e in tiny_examples(2)) + "\n\nToo short.\n"
    path = tmp_path / "book.txt"
    path.write_text(text)
    examples = load_examples([path])
    assert len(examples) == 12
    assert examples[0].topic == "This is about cats. Cats"
    metrics = train([path], tmp_path / "out", TrainConfig(epochs=1, batch_size=4, min_count=1), TINY)
    assert metrics["train_paragraphs"] + metrics["heldout_paragraphs"] == 12


def test_held_out_split_is_by_topic_and_fixed_by_seed() -> None:
    examples = tiny_examples()
    train_a, val_a = split_examples(examples, 0.34, seed=3)
    train_b, val_b = split_examples(list(reversed(examples)), 0.34, seed=3)
    assert {e.topic for e in val_a} == {e.topic for e in val_b}
    assert not {e.topic for e in train_a} & {e.topic for e in val_a}
    assert len({e.topic for e in val_a}) == 2


def test_checkpoint_round_trip_gives_identical_logits(tmp_path: Path) -> None:
    backend = tiny_backend()
    save_checkpoint(tmp_path / "m.pt", backend.model, backend.vocab.itos)
    model, tokens, _ = load_checkpoint(tmp_path / "m.pt")
    assert tokens == backend.vocab.itos and model.config == backend.model.config
    idx = torch.tensor([backend.vocab.prompt_ids(Prompt("cats"), 32) + [7, 8, 9]])
    topic_ids = torch.tensor([backend.vocab.topic_of(idx[0].tolist())])
    topic = backend.model.topic_vector(topic_ids, torch.ones(topic_ids.shape))
    assert topic[0, TINY.n_embd:].sum() > 0  # the copy gate sees the topic's words
    assert torch.equal(model(idx, topic)[0], backend.model(idx, topic)[0])


def test_backend_loads_from_a_checkpoint_file_or_its_folder(tmp_path: Path) -> None:
    backend = tiny_backend()
    save_checkpoint(tmp_path / "best.pt", backend.model, backend.vocab.itos)
    prompt = [backend.encode_prompt(Prompt("owls"), 16)]
    want = backend.prefill(backend.new_batch(), prompt)
    for source in (tmp_path, tmp_path / "best.pt"):
        loaded = LSTMBackend.load(source)
        assert torch.equal(loaded.prefill(loaded.new_batch(), prompt), want)


def test_rows_joining_and_leaving_give_the_same_logits_as_running_alone() -> None:
    backend = tiny_backend()
    a = backend.encode_prompt(Prompt("cats"), 16)
    b = backend.encode_prompt(Prompt("the sea", history=["Waves roll onto the sand."]), 16)
    steps_a, steps_b = [11, 12, 13, 14], [21, 22]

    def alone(prompt: list[int], steps: list[int]) -> list[torch.Tensor]:
        batch = backend.new_batch()
        out = [backend.prefill(batch, [prompt])[0]]
        out += [backend.decode(batch, torch.tensor([t]))[0] for t in steps]
        return out

    batch = backend.new_batch()
    got_a = [backend.prefill(batch, [a])[0], backend.decode(batch, torch.tensor([steps_a[0]]))[0]]
    got_b = [backend.prefill(batch, [b])[0]]  # b joins after a's first step
    for ta, tb in zip(steps_a[1:3], steps_b, strict=True):
        logits = backend.decode(batch, torch.tensor([ta, tb]))
        got_a.append(logits[0])
        got_b.append(logits[1])
    backend.keep(batch, [0])  # b leaves
    got_a.append(backend.decode(batch, torch.tensor([steps_a[3]]))[0])
    for got, want in ((got_a, alone(a, steps_a)), (got_b, alone(b, steps_b))):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert torch.allclose(g, w, atol=1e-5)


def test_prefill_of_several_prompts_matches_one_at_a_time() -> None:
    backend = tiny_backend()
    prompts = [backend.encode_prompt(Prompt(t), 16) for t in ("owls", "bread and butter", "x")]
    together = backend.prefill(backend.new_batch(), prompts)
    for row, prompt in enumerate(prompts):
        alone = backend.prefill(backend.new_batch(), [prompt])[0]
        assert torch.allclose(together[row], alone, atol=1e-5)


def test_structure_tokens_have_minus_infinity_logits_and_words_do_not() -> None:
    backend = tiny_backend()
    logits = backend.prefill(backend.new_batch(), [backend.encode_prompt(Prompt("owls"), 16)])[0]
    never = backend.vocab.special_ids(NEVER_GENERATED)
    assert logits.dtype == torch.float32 and logits.shape == (backend.vocab_size,)
    assert torch.isneginf(logits[never]).all()
    others = [i for i in range(backend.vocab_size) if i not in never]
    assert torch.isfinite(logits[others]).all()


def test_backend_follows_the_step_model_protocol() -> None:
    backend = tiny_backend()
    assert isinstance(backend, StepModel)
    assert backend.eos_token_ids == frozenset({backend.vocab.eos})


def test_encode_prompt_keeps_topic_and_direction_and_cuts_history_from_the_left() -> None:
    backend = tiny_backend()
    prompt = Prompt("cats", history=["one two three four five six seven eight nine ten"], direction="owls")
    ids = backend.encode_prompt(prompt, max_new_tokens=backend.context_window - 8)
    v = backend.vocab
    assert ids[:3] == [v.bos, v.stoi["cats"], v.sep] and len(ids) == 8
    assert ids[-1] == v.stoi["owls"] and v.itos[ids[-2]] == "<unk>"  # "ten": not in the tiny vocab


def test_beam_search_returns_valid_ids_that_respect_its_settings() -> None:
    backend = tiny_backend()
    prompt = backend.encode_prompt(Prompt("cats"), 30)
    ids = backend.beam_search(prompt, GenerationParams(
        strategy="beam", num_beams=3, max_new_tokens=20, min_new_tokens=12, no_repeat_ngram_size=2,
        repetition_penalty=1.2))
    never = set(backend.vocab.special_ids(NEVER_GENERATED)) | backend.eos_token_ids
    assert 12 <= len(ids) <= 20
    assert all(0 <= i < backend.vocab_size and i not in never for i in ids)
    pairs = list(zip(ids, ids[1:], strict=False))
    assert len(pairs) == len(set(pairs))
    assert isinstance(backend.decode_text(ids), str)


def test_beam_search_with_one_beam_is_greedy() -> None:
    backend = tiny_backend()
    prompt = backend.encode_prompt(Prompt("bread"), 30)
    batch, greedy = backend.new_batch(), []
    logits = backend.prefill(batch, [prompt])
    for _ in range(6):
        greedy.append(int(logits[0].argmax()))
        logits = backend.decode(batch, torch.tensor(greedy[-1:]))
    one_beam = GenerationParams(num_beams=1, max_new_tokens=6, min_new_tokens=6, no_repeat_ngram_size=0,
                                repetition_penalty=1.0, dry_multiplier=0.0)
    assert backend.beam_search(prompt, one_beam) == greedy


def test_ngram_ban_names_the_word_that_would_repeat_a_trigram() -> None:
    assert banned_by_ngrams([1, 2, 3, 1, 2], 3) == {3}
    assert banned_by_ngrams([1, 2, 3], 0) == set()


@pytest.mark.parametrize(
    "text",
    [
        "The artist's curiosity doesn't stop (at 3.5 km), \"she said.\" A 25-year-old; they're 80% done!",
        "Bees make honey: lots of it.",
    ],
)
def test_words_join_back_into_the_original_spacing(text: str) -> None:
    assert detokenize(split_words(text)) == text


def test_the_shipped_checkpoint_beats_markov_and_writes_about_its_own_topic() -> None:
    """The acceptance figures of data/lstm, measured again on its own held-out split."""
    from models.lstm.evaluate import compare
    from models.registry import CORPUS, LSTM_CHECKPOINT

    results = compare([CORPUS], LSTM_CHECKPOINT / "best.pt", seed=0)
    ppl = results["comparison"]["heldout_perplexity"]
    assert ppl["lstm"] < min(v for k, v in ppl.items() if k.startswith("markov"))
    lstm = results["topicality"]["lstm"]  # held-out topics: never seen in training
    assert lstm["own_topic_overlap"] > 5 * lstm["other_topic_overlap"]
