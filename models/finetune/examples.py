"""Paragraphs as token ids in the model's own prompt format, batched with the prompt masked out.

A chat model (SmolLM2-Instruct) learns to answer the very conversation the bot sends it
(models.prompts: system prompt, "Write a paragraph about {topic}.", earlier paragraphs as its
own answers); a plain LM (GPT-2) learns to continue the bot's "Topic.\\n\\n" header. The prompt
comes from HFStepModel.encode_prompt, the engine's own code, so training and serving agree.
Only the paragraph and the end-of-text token count in the loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from models.base import Prompt
from models.finetune.sources import Paragraph
from models.hf import HFStepModel

IGNORE = -100  # label value cross_entropy skips: prompt and padding tokens
MIN_TARGET = 8  # tokens of paragraph kept at least, however long the prompt


@dataclass(frozen=True)
class Encoded:
    """One example's token ids; the first `prompt_length` are context, not learned."""

    ids: list[int]
    prompt_length: int


def encode(model: HFStepModel, paragraph: Paragraph, max_length: int) -> Encoded:
    """The paragraph (ended by the model's end token) after its prompt, at most `max_length` ids."""
    end = model.tokenizer.eos_token_id
    target = model.tokenizer.encode(paragraph.text.strip(), add_special_tokens=False)
    target = target[: max(MIN_TARGET, max_length // 2)] if len(target) >= max_length // 2 else target
    target = target + ([int(end)] if end is not None else [])
    # encode_prompt keeps its prompt within context_window - max_new_tokens (dropping the oldest
    # paragraphs of a chat first), so ask for room for the target plus what max_length leaves.
    room = model.context_window - (max_length - len(target))
    prompt = model.encode_prompt(Prompt(paragraph.topic, list(paragraph.history)), max(room, len(target)))
    prompt = prompt[-(max_length - len(target)):]
    return Encoded(prompt + target, len(prompt))


def collate(examples: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input_ids, attention_mask and labels (IGNORE on prompt and padding)."""
    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.ids)
        ids[row, :n] = torch.tensor(e.ids)
        mask[row, :n] = 1
        labels[row, e.prompt_length:n] = torch.tensor(e.ids[e.prompt_length:])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def summed_nll(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(sum of the target tokens' negative log-likelihoods, number of target tokens)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    shifted = batch["labels"][:, 1:]  # (B, T-1): token t is predicted from position t-1
    loss = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]), shifted.reshape(-1),
        ignore_index=IGNORE, reduction="sum")
    return loss, int((shifted != IGNORE).sum())


@torch.no_grad()
def mean_nll(model: torch.nn.Module, examples: list[Encoded], pad_id: int, device: torch.device,
             batch_size: int = 8) -> float:
    """Mean negative log-likelihood per target token over `examples` (its exp is the perplexity)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(examples), batch_size):
        batch = {k: v.to(device) for k, v in collate(examples[i:i + batch_size], pad_id).items()}
        loss, n = summed_nll(model, batch)
        total, count = total + float(loss), count + n
    model.train(was_training)
    return total / max(1, count)


def perplexity(nll: float) -> float:
    """exp(mean NLL), capped so a diverged run prints a number rather than overflowing."""
    return math.exp(min(nll, 50.0))
