"""A chat model's new-story prompts share their first tokens (system prompt, template, "Write a
paragraph about"): their keys and values are computed once, and a new row prefills only its own suffix,
with exactly the text a full prefill gives."""

from __future__ import annotations

import asyncio

import pytest
import torch

from bot.engine.requests import GenerationRequest
from bot.engine.worker import Engine
from models.base import Prompt
from models.cpu_shapes import PREFILL_PAD_TOKENS
from models.hf import HFStepModel, load_hf_model
from models.params import GenerationParams
from tests.tiny_models import write_tiny_gpt2

GREEDY = GenerationParams(strategy="greedy", max_new_tokens=20, min_new_tokens=20, repetition_penalty=1.0,
                          dry_multiplier=0.0, no_repeat_ngram_size=0, stop_at_paragraph=False)
TOPICS = ["bread rises", "a storm rolled over the harbour", "the old library", "lamp"]


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> HFStepModel:
    folder = write_tiny_gpt2(tmp_path_factory.mktemp("tiny-chat"), chat=True)
    return load_hf_model(str(folder), torch.device("cpu"))


def generate_alone(model: HFStepModel, prompt: Prompt, length: int) -> str:
    ids = torch.tensor([model.encode_prompt(prompt, length)])
    out = model.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=length,
                               min_new_tokens=length, pad_token_id=model.pad_id)
    return model.decode_text(out[0, ids.shape[1]:].tolist()).strip()


def test_chat_prompts_begin_with_the_shared_prefix_and_plain_prompts_have_none(
        chat_model: HFStepModel, tiny_gpt2_model: HFStepModel) -> None:
    prefix = chat_model.shared_prefix().ids
    assert len(prefix) >= 8 and chat_model.decode_text(prefix).rstrip().endswith("about")
    for prompt in [Prompt(t) for t in TOPICS]:
        assert chat_model.encode_prompt(prompt, 20)[:len(prefix)] == prefix
    # A continuation begins as its story's /write did (its opening is the answer to that request),
    # so it reuses the prefix too.
    assert chat_model.encode_prompt(Prompt("lamp", history=["It was dark."]), 20)[:len(prefix)] == prefix
    assert tiny_gpt2_model.shared_prefix().ids == []  # "Bread rises.\\n\\n" shares nothing with "Lamp.\\n\\n"


async def test_rows_prefilled_after_the_prefix_write_what_a_full_prefill_writes(chat_model: HFStepModel) -> None:
    shared = len(chat_model.shared_prefix().ids)  # computed once, before counting
    assert shared >= 8
    fed: list[int] = []
    hook = chat_model.model.register_forward_pre_hook(
        lambda _, args, kwargs: fed.append(kwargs["input_ids"].shape[1]) if kwargs["input_ids"].shape[1] > 1 else None,
        with_kwargs=True)
    prompts = [Prompt(t) for t in TOPICS] + [Prompt("lamp", history=["It was dark and cold."], direction="dawn")]
    lengths = [8, 40, 16, 24, 12]
    try:
        async with Engine(lambda name: chat_model, "tiny", max_batch=3, prefill_budget=1) as engine:
            handles = []
            for prompt, length in zip(prompts, lengths, strict=True):  # arriving while others run
                handles.append(engine.submit(GenerationRequest(
                    prompt, GREEDY.replace(max_new_tokens=length, min_new_tokens=length), fairness_key=prompt.topic)))
                await asyncio.sleep(0.01)
            texts = [(await h.result()).text for h in handles]
    finally:
        hook.remove()
    assert texts == [generate_alone(chat_model, p, n) for p, n in zip(prompts, lengths, strict=True)]
    longest_suffix = max(len(ids) - (shared if ids[:shared] == chat_model.shared_prefix().ids else 0)
                         for ids in (chat_model.encode_prompt(p, 40) for p in prompts))
    # No prefill ran over the shared tokens again (a CPU prefill pads long suffixes to a multiple).
    assert fed and max(fed) <= -(-longest_suffix // PREFILL_PAD_TOKENS) * PREFILL_PAD_TOKENS < longest_suffix + shared
