"""Tiny real checkpoints the tests make: a random GPT-2 and its byte-level BPE tokenizer,
written with save_pretrained and loaded back through the project's real loading code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from bot.engine.requests import GenerationRequest
from bot.engine.worker import Engine
from models.base import Prompt

TRAINING_TEXT = [
    "The lighthouse keeper climbed the stairs at dusk and lit the great lamp.",
    "Bread rises slowly in a warm kitchen while the baker sings.",
    "A storm rolled over the harbour, and the boats pulled at their ropes.",
    "The old library smelled of dust, paper and candle wax.",
] * 20


# A minimal chat template, enough to make the tiny model a chat model like SmolLM2-Instruct.
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|endoftext|>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def tiny_tokenizer(chat: bool = False) -> PreTrainedTokenizerFast:
    """A 300-token byte-level BPE trained on TRAINING_TEXT."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(TRAINING_TEXT, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>",
                                   bos_token="<|endoftext|>")
    if chat:
        fast.chat_template = TINY_CHAT_TEMPLATE
    return fast


def write_tiny_gpt2(folder: Path, seed: int = 0, chat: bool = False) -> Path:
    """A 2-layer GPT-2 with random weights and a 300-token tokenizer, saved like any checkpoint."""
    torch.manual_seed(seed)
    fast = tiny_tokenizer(chat)
    config = GPT2Config(vocab_size=fast.vocab_size, n_positions=512, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=fast.eos_token_id, eos_token_id=fast.eos_token_id)
    model = GPT2LMHeadModel(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def write_tiny_llama(folder: Path, seed: int = 0, heads: int = 4, kv_heads: int = 2) -> Path:
    """A 2-layer Llama (SmolLM2's architecture: grouped-query attention, tied embeddings) with
    random weights, widths a multiple of 32 so its products can be packed as int4; `heads` 1
    gives SmolLM2's head width, 64."""
    torch.manual_seed(seed)
    fast = tiny_tokenizer(chat=True)
    config = LlamaConfig(vocab_size=fast.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=512,
                         tie_word_embeddings=True, bos_token_id=fast.eos_token_id, eos_token_id=fast.eos_token_id)
    model = LlamaForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def decode_steps(model: Any, prompts: list[list[int]], steps: int) -> list[torch.Tensor]:
    """Logits of `steps` greedy decode steps after prefilling `prompts` together."""
    batch = model.new_batch()
    logits = model.prefill(batch, prompts)
    seen = []
    for _ in range(steps):
        logits = model.decode(batch, logits.argmax(dim=-1))
        seen.append(logits)
    return seen


async def assert_rows_of_different_lengths_equal_generate(model: Any, greedy: Any) -> None:
    """Four rows of 8-20 tokens through the engine together; each equals `generate` run alone on
    its own prompt (the batch shrinks as rows finish, so it may change path between steps)."""
    lengths = {"a lighthouse": 8, "bread": 12, "the storm": 16, "an old clock": 20}
    async with Engine(lambda name: model, "tiny") as engine:
        handles = {topic: engine.submit(GenerationRequest(Prompt(topic), greedy.replace(
            max_new_tokens=n, min_new_tokens=n), fairness_key=topic)) for topic, n in lengths.items()}
        results = {topic: await handle.result() for topic, handle in handles.items()}
    for topic, n in lengths.items():
        ids = torch.tensor([model.encode_prompt(Prompt(topic), n)])
        out = model.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                                   min_new_tokens=n, pad_token_id=model.pad_id)
        assert results[topic].text == model.decode_text(out[0, ids.shape[1]:].tolist()).strip(), topic
