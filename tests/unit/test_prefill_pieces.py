"""A CPU prefill meets only a bounded set of matrix shapes (models/cpu_shapes.py): oneDNN
keeps what it builds for every shape it meets, so a prefill of any size would grow resident
memory for good. Grouped and padded so, rows write exactly what they write alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch

from bot.engine.requests import GenerationRequest
from bot.engine.worker import Engine
from models.base import Prompt
from models.cpu_shapes import (
    MAX_PREFILL_TOKENS,
    PREFILL_PAD_TOKENS,
    SMALL_PREFILL_TOKENS,
    grid_rows,
    matrix_rows,
    prefill_groups,
    warm_matrix_shapes,
)
from models.hf import HFStepModel, load_hf_model
from models.params import GenerationParams
from tests.tiny_models import write_tiny_llama

# The retelling check's MiniLM (float32, its own shapes) is not the model whose shapes are warmed.
GREEDY = GenerationParams(strategy="greedy", max_new_tokens=12, min_new_tokens=12, repetition_penalty=1.0,
                          dry_multiplier=0.0, no_repeat_ngram_size=0, stop_at_paragraph=False,
                          retell_check=False)
LONG_STORY = ["The lamp burned low while the keeper counted ships. " * 12, "Then the storm came in. " * 9]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> HFStepModel:
    return load_hf_model(str(write_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))), torch.device("cpu"))


def matrix_rows_seen(model: HFStepModel) -> tuple[set[int], list[torch.utils.hooks.RemovableHandle]]:
    """The M (rows of the flattened input) of every matrix product the model's layers run."""
    seen: set[int] = set()
    hooks = [module.register_forward_pre_hook(lambda _, args: seen.add(args[0].shape[:-1].numel()))
             for module in model.model.modules()
             if getattr(module, "weight", None) is not None and module.weight.dim() == 2
             and not isinstance(module, torch.nn.Embedding)]
    return seen, hooks


def generate_alone(model: HFStepModel, prompt: Prompt, length: int) -> str:
    ids = torch.tensor([model.encode_prompt(prompt, length)])
    out = model.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=length,
                               min_new_tokens=length, pad_token_id=model.pad_id)
    return model.decode_text(out[0, ids.shape[1]:].tolist()).strip()


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_gpt2_model"])
async def test_prefills_meet_only_the_bounded_shapes_and_write_what_one_prefill_writes(
        fixture: str, request: pytest.FixtureRequest) -> None:
    model: HFStepModel = request.getfixturevalue(fixture)
    prompts = [Prompt("a lighthouse", history=LONG_STORY), Prompt("owls"),
               Prompt("a lighthouse", history=LONG_STORY[:1], direction="dawn"), Prompt("the sea", history=LONG_STORY)]
    lengths = [len(model.encode_prompt(p, GREEDY.max_new_tokens)) for p in prompts]
    assert max(lengths) > 2 * SMALL_PREFILL_TOKENS
    seen, hooks = matrix_rows_seen(model)
    try:
        async with Engine(lambda name: model, "tiny", max_batch=4) as engine:
            handles = []
            for index, prompt in enumerate(prompts):  # two join together, two while others run
                handles.append(engine.submit(GenerationRequest(prompt, GREEDY, fairness_key=f"c{index}")))
                if index % 2:
                    await asyncio.sleep(0.01)
            texts = [(await h.result()).text for h in handles]
    finally:
        for hook in hooks:
            hook.remove()
    assert texts == [generate_alone(model, p, GREEDY.max_new_tokens) for p in prompts]
    odd = [m for m in seen if m > SMALL_PREFILL_TOKENS and (m % PREFILL_PAD_TOKENS or m > MAX_PREFILL_TOKENS)]
    assert seen and not odd, f"matrix products ran with {odd} rows"


def test_groups_keep_order_and_every_shape_is_small_or_a_padded_multiple() -> None:
    lengths = [5, 9, 7, 300, 40, 41, 12, 900, 3]
    groups = prefill_groups(lengths)
    assert [i for start, end, _ in groups for i in range(start, end)] == list(range(len(lengths)))
    for start, end, length in groups:
        rows = end - start
        assert length >= max(lengths[start:end])
        assert rows * length <= SMALL_PREFILL_TOKENS or (
            length % PREFILL_PAD_TOKENS == 0 and (rows * length <= MAX_PREFILL_TOKENS or rows == 1))
    assert groups[0] == (0, 3, 9)  # three short prompts in one forward, unpadded
    assert (3, 4, 320) in groups and (7, 8, 928) in groups


def test_gpu_prefill_is_not_cut(tiny_llama: HFStepModel, tmp_path: Path) -> None:
    gpu_like = load_hf_model(str(write_tiny_llama(tmp_path)), torch.device("cpu"))
    gpu_like.bounded_prefill_shapes = False  # what a CUDA device gets: its kernels do not pile up
    seen, hooks = matrix_rows_seen(gpu_like)
    prompt = gpu_like.encode_prompt(Prompt("a lighthouse", history=LONG_STORY), 8)
    try:
        pieces = tiny_llama.prefill(tiny_llama.new_batch(), [prompt])
        whole = gpu_like.prefill(gpu_like.new_batch(), [prompt])
    finally:
        for hook in hooks:
            hook.remove()
    assert max(seen) >= len(prompt) - len(gpu_like.shared_prefix().ids)
    torch.testing.assert_close(pieces, whole, rtol=1e-4, atol=1e-4)


def products_met(monkeypatch: pytest.MonkeyPatch) -> set[tuple[int, int, int]]:
    """(in, out, rows) of every matrix product from now on, as the kernels get it (padded)."""
    met: set[tuple[int, int, int]] = set()
    linear = torch.nn.functional.linear

    def recording(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        met.add((weight.shape[1], weight.shape[0], x.numel() // x.shape[-1]))
        return linear(x, weight, bias)

    monkeypatch.setattr(torch.nn.functional, "linear", recording)
    return met


async def test_the_warm_up_meets_every_shape_the_engine_then_meets(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_hf_model(str(write_tiny_llama(tmp_path)), torch.device("cpu"), dtype=torch.bfloat16)
    met = products_met(monkeypatch)
    assert warm_matrix_shapes(model.model) == len(met)
    warmed = set(met)
    met.clear()
    prompts = [Prompt("a lighthouse", history=LONG_STORY), Prompt("owls"), Prompt("the sea", history=LONG_STORY[:1])]
    async with Engine(lambda name: model, "tiny", max_batch=12) as engine:
        handles = [engine.submit(GenerationRequest(p, GREEDY.replace(variants=4), fairness_key=str(i)))
                   for i, p in enumerate(prompts)]
        for handle in handles:
            await handle.result()
    assert met and met <= warmed, f"shapes met after the warm-up: {sorted(met - warmed)}"
    assert {rows for _, _, rows in met} <= set(matrix_rows(output_layer=False))


def test_the_grid_holds_every_row_count_in_few_shapes() -> None:
    assert [grid_rows(rows) for rows in (1, 7, 8, 9, 16, 17, 64, 65, 96, 128, 129, 1024)] == [
        1, 7, 8, 16, 16, 24, 64, 128, 128, 128, 192, 1024]
    assert all(grid_rows(rows) >= rows and grid_rows(grid_rows(rows)) == grid_rows(rows) for rows in range(1, 1025))
    assert len({grid_rows(rows) for rows in range(1, MAX_PREFILL_TOKENS + 1)}) == 30
    assert len(matrix_rows(output_layer=True)) == 15


def test_products_on_the_grid_give_each_row_what_it_gets_unpadded(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_hf_model(str(write_tiny_llama(tmp_path)), torch.device("cpu"), dtype=torch.bfloat16)
    ids = torch.randint(10, 200, (3, 11), generator=torch.Generator().manual_seed(0))  # M = 33: padded to 40
    met = products_met(monkeypatch)
    with torch.inference_mode():
        on_grid = model.model(input_ids=ids).logits
        assert {rows for _, _, rows in met} == {40}
        for module in model.model.modules():
            if isinstance(module, torch.nn.Linear):
                del module.forward  # the class's own forward again
        met.clear()
        unpadded = model.model(input_ids=ids).logits
    assert {rows for _, _, rows in met} == {33}
    torch.testing.assert_close(on_grid, unpadded, rtol=0, atol=0)
