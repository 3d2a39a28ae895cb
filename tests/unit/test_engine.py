"""The generation engine: continuous batching with per-row settings, fairness, limits, faults."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import torch

from bot.engine.fair_queue import QueueFull, UserBusy
from bot.engine.requests import GenerationRequest
from bot.engine.worker import Engine
from models.base import Prompt
from models.hf import HFStepModel, load_hf_model
from models.params import GenerationParams

GREEDY = GenerationParams(strategy="greedy", max_new_tokens=24, min_new_tokens=24, repetition_penalty=1.0,
                          dry_multiplier=0.0, no_repeat_ngram_size=0, stop_at_paragraph=False)


@pytest.fixture(scope="module")
def tiny(tiny_gpt2_dir: Path) -> HFStepModel:
    return load_hf_model(str(tiny_gpt2_dir), torch.device("cpu"))


def make_engine(model: object, **kwargs: object) -> Engine:
    models = model if isinstance(model, dict) else {"tiny": model}
    return Engine(lambda name: models[name], "tiny", **kwargs)  # type: ignore[arg-type]


def request(topic: str, params: GenerationParams = GREEDY, key: str = "c", user: int | None = None,
            model: str = "tiny") -> GenerationRequest:
    return GenerationRequest(Prompt(topic), params.replace(model=model), fairness_key=key, user_id=user)


def generate_alone(model: HFStepModel, topic: str, params: GenerationParams) -> str:
    """transformers' own generate on one prompt: the reference the engine must match."""
    ids = torch.tensor([model.encode_prompt(Prompt(topic), params.max_new_tokens)])
    out = model.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                               max_new_tokens=params.max_new_tokens, min_new_tokens=params.min_new_tokens,
                               pad_token_id=model.pad_id)
    return model.decode_text(out[0, ids.shape[1]:].tolist()).strip()


async def test_greedy_row_equals_generate_run_alone(tiny: HFStepModel) -> None:
    async with make_engine(tiny) as engine:
        event = await engine.submit(request("the lighthouse keeper")).result()
    assert event.kind == "done"
    assert event.text == generate_alone(tiny, "the lighthouse keeper", GREEDY)


class Preferring:
    """Wraps a model so that every step ranks `order` first, best first, whatever the context."""

    def __init__(self, model: HFStepModel, order: list[int]) -> None:
        self.inner, self.order = model, order

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def _ranked(self, logits: torch.Tensor) -> torch.Tensor:
        ranked = torch.full_like(logits, -100.0)
        ranked[:, self.order] = torch.arange(len(self.order), 0, -1, dtype=logits.dtype)
        return ranked

    def prefill(self, batch: object, prompts: list[list[int]]) -> torch.Tensor:
        return self._ranked(self.inner.prefill(batch, prompts))  # type: ignore[arg-type]

    def decode(self, batch: object, tokens: torch.Tensor) -> torch.Tensor:
        return self._ranked(self.inner.decode(batch, tokens))  # type: ignore[arg-type]


async def test_an_engine_row_under_a_2_gram_ban_repeats_a_split_word_but_no_word_pair(tiny: HFStepModel) -> None:
    light, house = tiny.tokenizer.encode(" lighthouse")[:2]
    also = tiny.tokenizer.encode(" and")[0]
    assert house in tiny.ngram_free_tokens and not {light, also} & tiny.ngram_free_tokens
    banned = GREEDY.replace(no_repeat_ngram_size=2, max_new_tokens=12, min_new_tokens=12)
    async with make_engine({"tiny": Preferring(tiny, [light, house, also])}) as engine:
        event = await engine.submit(request("a lamp", banned)).result()
    word, two_starts = tiny.decode_text([light, house]), tiny.decode_text([light, light])
    assert event.text.count(word.strip()) >= 2  # a token-level ban allows the pair (light, house) once
    assert event.text.count(two_starts.strip()) == 1  # (light, light) is a pair of word starts: once only


async def test_rows_joining_and_leaving_mid_batch_match_running_alone(tiny: HFStepModel) -> None:
    topics = ["bread rises", "a storm rolled", "the old library", "lamp"]
    lengths = [8, 90, 16, 40]  # 90 outgrows the KV cache's spare room (models/kv_cache.py) twice
    async with make_engine(tiny, max_batch=3, prefill_budget=1) as engine:
        handles = []
        for topic, length in zip(topics, lengths, strict=True):
            params = GREEDY.replace(max_new_tokens=length, min_new_tokens=length)
            handles.append((topic, params, engine.submit(request(topic, params, key=topic))))
            await asyncio.sleep(0.01)  # arrive at different times: join a running batch
        for topic, params, handle in handles:
            event = await handle.result()
            assert event.text == generate_alone(tiny, topic, params), topic


async def test_each_row_keeps_its_own_settings_in_a_mixed_batch(tiny: HFStepModel) -> None:
    sampled = GREEDY.replace(strategy="sample", temperature=1.3, top_k=20, top_p=0.9, seed=7)
    async with make_engine(tiny) as engine:
        alone_sampled = (await engine.submit(request("bread", sampled)).result()).text
        handles = [engine.submit(request("bread", sampled, key="a")),
                   engine.submit(request("lamp", GREEDY, key="b")),
                   engine.submit(request("bread", sampled.replace(seed=8), key="c"))]
        results = [(await h.result()).text for h in handles]
    assert results[0] == alone_sampled  # same seed, settings and prompt: same text
    assert results[1] == generate_alone(tiny, "lamp", GREEDY)  # the greedy row stayed greedy
    assert results[2] != results[0]  # another seed in the same batch draws differently


async def test_temperature_keeps_masked_tokens_impossible(tiny: HFStepModel) -> None:
    params = GREEDY.replace(strategy="top_k", top_k=1, temperature=2.0, seed=3)
    async with make_engine(tiny) as engine:
        text = (await engine.submit(request("bread", params)).result()).text
    assert text == generate_alone(tiny, "bread", GREEDY)  # top-1 sampling is greedy at any temperature


async def test_cancel_frees_the_slot_for_the_next_request(tiny: HFStepModel) -> None:
    long = GREEDY.replace(max_new_tokens=512, min_new_tokens=256)
    async with make_engine(tiny, max_batch=1) as engine:
        first = engine.submit(request("lamp", long, key="a"))
        second = engine.submit(request("bread", GREEDY, key="b"))
        async for event in first.events():
            if event.kind == "text":
                engine.cancel(first)
        assert first.final is not None and first.final.kind == "cancelled"
        assert (await second.result()).kind == "done"


class BlockingLoader:
    """A loader that holds every request in the queue until released."""

    def __init__(self, model: HFStepModel) -> None:
        self.model = model
        self.release = threading.Event()

    def __call__(self, name: str) -> HFStepModel:
        self.release.wait(10)
        return self.model


async def test_queue_refuses_past_its_bound_with_an_estimated_wait(tiny: HFStepModel) -> None:
    loader = BlockingLoader(tiny)
    engine = Engine(loader, "tiny", max_waiting=2)
    async with engine:
        engine.submit(request("a", key="a"))
        engine.submit(request("b", key="b"))
        with pytest.raises(QueueFull) as refused:
            engine.submit(request("c", key="c"))
        assert refused.value.estimated_wait_s > 0
        loader.release.set()


async def test_a_user_cannot_have_more_than_the_limit_in_flight(tiny: HFStepModel) -> None:
    loader = BlockingLoader(tiny)
    async with Engine(loader, "tiny", max_per_user=2) as engine:
        engine.submit(request("a", user=1))
        engine.submit(request("b", user=1))
        with pytest.raises(UserBusy):
            engine.submit(request("c", user=1))
        engine.submit(request("d", user=2))  # others are not affected
        loader.release.set()


async def test_busy_channel_cannot_starve_others(tiny: HFStepModel) -> None:
    loader = BlockingLoader(tiny)
    async with Engine(loader, "tiny", max_batch=1) as engine:
        busy = [engine.submit(request(f"a{i}", key="busy")) for i in range(3)]
        quiet = engine.submit(request("b", key="quiet"))
        assert [engine.queue.position(h) for h in busy + [quiet]] == [1, 3, 4, 2]  # the order served
        loader.release.set()
        order = []

        async def finish(handle: object, name: str) -> None:
            await handle.result()  # type: ignore[attr-defined]
            order.append(name)

        await asyncio.gather(*(finish(h, n) for h, n in zip(busy + [quiet], ["a0", "a1", "a2", "b"],
                                                               strict=True)))
    assert order.index("b") < order.index("a1")


class FailingModel:
    """Wraps a model; its next `failures` decode steps raise `error`."""

    def __init__(self, model: HFStepModel, error: Exception, failures: int = 1, min_rows: int = 1) -> None:
        self.inner, self.error, self.failures, self.min_rows = model, error, failures, min_rows

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def decode(self, batch: object, tokens: torch.Tensor) -> torch.Tensor:
        if self.failures > 0 and tokens.shape[0] >= self.min_rows:
            self.failures -= 1
            raise self.error
        return self.inner.decode(batch, tokens)  # type: ignore[arg-type]


async def test_a_step_error_fails_only_its_requests_and_the_worker_goes_on(tiny: HFStepModel) -> None:
    models = {"tiny": tiny, "broken": FailingModel(tiny, RuntimeError("kernel exploded"))}
    async with make_engine(models) as engine:
        good = engine.submit(request("bread", key="a"))
        bad = engine.submit(request("lamp", key="b", model="broken"))
        bad_event = await bad.result()
        assert bad_event.kind == "error" and "kernel exploded" in bad_event.text
        assert (await good.result()).kind == "done"
        again = await engine.submit(request("lamp", key="b", model="broken")).result()
        assert again.kind == "done"


async def test_out_of_memory_shrinks_the_batch_and_loses_nothing(tiny: HFStepModel) -> None:
    oom = FailingModel(tiny, RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), min_rows=4)
    async with make_engine({"tiny": oom}, max_batch=4) as engine:
        await engine.submit(request("warm-up")).result()  # the model is loaded before the burst
        handles = [engine.submit(request(t, key=t)) for t in ("bread", "lamp", "storm", "dust")]
        results = [await h.result() for h in handles]
        assert engine.max_batch == 2
    for topic, event in zip(("bread", "lamp", "storm", "dust"), results, strict=True):
        assert event.kind == "done" and event.text == generate_alone(tiny, topic, GREEDY)


async def test_stop_string_ends_the_text_before_it(tiny: HFStepModel) -> None:
    async with make_engine(tiny) as engine:
        full = (await engine.submit(request("bread")).result()).text
        stop = full[10:12]
        cut = (await engine.submit(request("bread", GREEDY.replace(stop=stop, min_new_tokens=0))).result()).text
    assert stop not in cut and full.startswith(cut)


async def test_variants_are_written_side_by_side(tiny: HFStepModel) -> None:
    params = GREEDY.replace(strategy="sample", variants=3, seed=1)
    async with make_engine(tiny) as engine:
        handle = engine.submit(request("bread", params))
        finished = [e for e in [e async for e in handle.events()] if e.kind == "variant_done"]
    assert sorted(e.variant for e in finished) == [0, 1, 2]
    assert len({e.text for e in finished}) == 3


async def test_stats_count_tokens_and_requests(tiny: HFStepModel) -> None:
    async with make_engine(tiny) as engine:
        await engine.submit(request("bread")).result()
        stats = engine.stats()
    assert stats.requests_done == 1 and stats.tokens_total >= GREEDY.max_new_tokens
    assert stats.ttft_p50_s is not None and stats.queue_length == 0
