"""The small-batch decode path: the trimmed Llama step, its packed weights, and the plan."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from models.decode_plan import DecodePlan, build_step, choose_plan, source_formats
from models.embedded import embedded_gguf
from models.hf import HFStepModel, load_hf_model
from models.llama_step import LlamaDecodeStep
from models.params import GenerationParams
from models.weight_formats import pack
from tests.tiny_models import assert_rows_of_different_lengths_equal_generate, decode_steps, write_tiny_llama

GREEDY = GenerationParams(model="tiny", strategy="greedy", max_new_tokens=20, min_new_tokens=20,
                          repetition_penalty=1.0, dry_multiplier=0.0, no_repeat_ngram_size=0, stop_at_paragraph=False)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def llama(llama_dir: Path, tmp_path: Path) -> HFStepModel:
    """The tiny Llama in float32 with the trimmed step (dense weights) for batches of up to 8."""
    model = load_hf_model(str(llama_dir), CPU, torch.float32, decode="off", cache_dir=tmp_path)
    model.small_step, model.small_batch = LlamaDecodeStep.build(model.model, "dense", "dense"), 8
    return model


def test_trimmed_step_gives_transformers_logits_for_left_padded_rows(llama: HFStepModel) -> None:
    prompts = [[5, 9, 30, 41, 7, 2], [12, 3], [8, 8, 100, 4]]
    trimmed = decode_steps(llama, prompts, 6)
    llama.small_step = None
    full = decode_steps(llama, prompts, 6)
    for ours, theirs in zip(trimmed, full, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


async def test_greedy_rows_equal_generate_while_the_batch_crosses_between_paths(llama: HFStepModel) -> None:
    """Four rows of different lengths with the trimmed step for up to 2: the batch starts on
    transformers' forward and moves to the trimmed step as rows finish; each row is still what
    `generate` writes alone."""
    llama.small_batch = 2
    await assert_rows_of_different_lengths_equal_generate(llama, GREEDY)


def test_packed_step_of_a_4_bit_model_stays_close_to_the_dense_one(llama: HFStepModel) -> None:
    """Decoder weights on a 4-bit grid (as a Q4_1 GGUF's are) are held exactly by int4; only the
    int8 output layer rounds."""
    with torch.no_grad():
        for layer in llama.model.model.layers:
            for linear in (*(getattr(layer.self_attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")),
                           layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj):
                linear.weight.copy_(pack(linear.weight, "int4", torch.float32).dequantized())
    llama.small_step = LlamaDecodeStep.build(llama.model, "dense", "dense")
    prompts = [[5, 9, 30, 41, 7, 2]]
    dense = decode_steps(llama, prompts, 4)
    llama.small_step = LlamaDecodeStep.build(llama.model, "int4", "int8")
    packed = decode_steps(llama, prompts, 4)
    for ours, theirs in zip(packed, dense, strict=True):
        assert (ours - theirs).abs().max() < 0.01 * theirs.abs().max()


def test_packed_weights_are_cached_on_disk_and_read_back(llama: HFStepModel, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "model.gguf"
    source.write_bytes(b"stands in for the weights' file: the cache is keyed on its path, size and time")
    plan = DecodePlan("int4", "int8", 8, "test")
    first = build_step(llama.model, plan, source, tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 1

    def no_packing(*args: object) -> None:
        raise AssertionError("packed again although the cache holds the weights")

    monkeypatch.setattr(LlamaDecodeStep, "build", no_packing)
    again = build_step(llama.model, plan, source, tmp_path / "cache")
    assert again.tensors().keys() == first.tensors().keys()
    for name, tensor in first.tensors().items():
        assert torch.equal(again.tensors()[name], tensor), name


def test_a_damaged_cache_file_is_packed_again(llama: HFStepModel, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    source = tmp_path / "model.gguf"
    source.write_bytes(b"weights")
    plan = DecodePlan("int4", "int8", 8, "test")
    build_step(llama.model, plan, source, tmp_path / "cache")
    [cached] = (tmp_path / "cache").iterdir()
    cached.write_bytes(b"not a tensor file")
    with caplog.at_level(logging.WARNING):
        step = build_step(llama.model, plan, source, tmp_path / "cache")
    assert step.layers[0].qkv.format == "int4" and "packing again" in caplog.text
    assert cached.stat().st_size > 1000  # written anew


def test_loading_says_in_one_line_which_path_each_batch_size_takes(llama_dir: Path, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="models.hf"):
        model = load_hf_model(str(llama_dir), CPU, torch.float32, decode="auto", cache_dir=tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.name == "models.hf"]
    assert len(lines) == 1
    if model.small_step is None:  # a processor without a plan: transformers' forward throughout
        assert "every batch takes transformers' forward" in lines[0]
    else:
        assert f"batches of 1-{model.small_batch} rows take the trimmed step" in lines[0] and "float32" in lines[0]


def test_no_plan_for_the_gpu_for_other_architectures_or_when_turned_off(llama: HFStepModel,
                                                                        tiny_gpt2_model: HFStepModel) -> None:
    assert choose_plan(llama.model, torch.device("cuda"), None) is None
    assert choose_plan(llama.model, CPU, None, "off") is None
    assert choose_plan(tiny_gpt2_model.model, CPU, None) is None


def test_a_float_checkpoint_keeps_its_own_dtype_and_the_embedded_gguf_its_own_grid() -> None:
    assert source_formats(None) == ("dense", "dense")
    found = embedded_gguf()
    if found is None:
        pytest.skip("the embedded model package is not installed")
    # SmolLM2's file: Q4_1 decoder products (held by int4), a Q8_0 output layer (held by int8).
    assert source_formats(found[0] / found[1]) == ("int4", "int8")


def test_a_float32_model_keeps_dense_weights_even_from_a_4_bit_file(llama: HFStepModel,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The packed kernels pay only with bfloat16 activations (float32 ones made them 5-14x slower)."""
    monkeypatch.setattr("models.decode_plan.source_formats", lambda path: ("int4", "int8"))
    plan = choose_plan(llama.model, CPU, Path("model.gguf"))
    if plan is None:
        pytest.skip("no small-batch plan on this processor")
    assert (plan.layers, plan.output) == ("dense", "dense")
    llama.model.to(torch.bfloat16)
    plan = choose_plan(llama.model, CPU, Path("model.gguf"))
    assert plan is not None and (plan.layers, plan.output) == ("int4", "int8")


def test_the_small_batch_path_is_the_owners_choice_and_off_by_default(llama_dir: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DECODE_PATH", raising=False)
    assert load_hf_model(str(llama_dir), CPU, torch.float32, cache_dir=tmp_path).small_step is None
    monkeypatch.setenv("DECODE_PATH", "auto")
    chosen = load_hf_model(str(llama_dir), CPU, torch.float32, cache_dir=tmp_path)
    explicit = load_hf_model(str(llama_dir), CPU, torch.float32, decode="auto", cache_dir=tmp_path)
    assert (chosen.small_step is None) == (explicit.small_step is None)  # the same plan as asked outright
    assert chosen.small_batch == explicit.small_batch
