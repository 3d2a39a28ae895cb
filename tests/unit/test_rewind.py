"""A row that rewinds is exactly where it was before the phrase: every backend's state, the sampler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from models.hf import HFStepModel, load_hf_model
from models.markov import MarkovBackend
from models.params import GenerationParams
from models.sampling import RowSampling, choose_tokens
from tests.tiny_models import write_tiny_llama
from tests.unit.test_lstm import tiny_backend
from tests.unit.test_markov import chain

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("tiny-llama-rewind"))


def hf_model(folder: Path, cache: Path, decode: str) -> HFStepModel:
    from tests.unit.test_native_step import on_gguf_grids

    return on_gguf_grids(load_hf_model(str(folder), CPU, torch.float32, decode=decode, cache_dir=cache))


@pytest.fixture(scope="module")
def backends(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cache = tmp_path_factory.mktemp("rewind-cache")
    found: dict[str, Any] = {"lstm": tiny_backend(), "markov": MarkovBackend(chain()),
                             "transformers": hf_model(llama_dir, cache, "off")}
    native = hf_model(llama_dir, cache, "native-float32")
    if native.small_step is not None:  # the compiled step, where this machine builds it
        found["compiled"] = native
    return found


def prompts_for(model: Any) -> list[list[int]]:
    vocab = getattr(model, "vocab", None)
    if vocab is not None:
        from models.base import Prompt

        return [model.encode_prompt(Prompt("a lighthouse keeper"), 32),
                model.encode_prompt(Prompt("the old clock", ["the clock ran back"]), 32)]
    return [list(range(5, 17)), list(range(30, 37))]


@pytest.mark.parametrize("backend", ["lstm", "markov", "transformers", "compiled"])
def test_logits_after_a_rewind_and_the_same_tokens_equal_those_before(backend: str,
                                                                      backends: dict[str, Any]) -> None:
    models = backends
    if backend not in models:
        pytest.skip("the compiled step cannot be built here")
    model = models[backend]
    prompts = prompts_for(model)
    with torch.inference_mode():
        batch = model.new_batch()
        logits = model.prefill(batch, prompts)
        fed: list[list[int]] = [[], []]
        seen: list[torch.Tensor] = []  # row 0's logits after each fed token
        for _ in range(6):
            tokens = logits.argmax(dim=-1)
            for row, token in enumerate(tokens.tolist()):
                fed[row].append(token)
            logits = model.decode(batch, tokens)
            seen.append(logits[0].clone())
        # Row 0 forgets its last 4 fed tokens, then is fed the same ones again; row 1 goes on.
        model.rewind(batch, 0, prompts[0] + fed[0][:2], 4)
        for step in range(2, 6):
            tokens = torch.tensor([fed[0][step], int(logits[1].argmax())])
            logits = model.decode(batch, tokens)
            torch.testing.assert_close(logits[0], seen[step], rtol=1e-4, atol=1e-4)


def test_a_rewound_sampler_forbids_the_token_it_wrote_there_and_forgets_the_rest() -> None:
    params = GenerationParams(strategy="greedy", no_repeat_ngram_size=2, dry_multiplier=0.8)
    row = RowSampling.create(params, frozenset({0}), None, context=[3, 4, 5, 6])
    fresh = RowSampling.create(params, frozenset({0}), None, context=[3, 4, 5, 6])
    for token in (7, 8, 9, 10):
        row.push(token)
    for token in (7, 8):
        fresh.push(token)
    row.rewind(2)  # forget 9 and 10; 9 may not be written at position 2 again
    assert row.generated == [7, 8] and row.forbidden == {2: {9}}
    assert row.dry is not None and fresh.dry is not None
    assert torch.equal(row.dry.seq[: row.dry.length], fresh.dry.seq[: fresh.dry.length])
    assert torch.equal(row.dry.matches[: row.dry.length], fresh.dry.matches[: fresh.dry.length])
    assert row.ngram_ban.banned() == fresh.ngram_ban.banned()
    logits = torch.zeros(1, 20)
    logits[0, 9] = 5.0
    assert choose_tokens(logits.clone(), [row]) != [9]
    assert choose_tokens(logits.clone(), [fresh]) == [9]
