"""A tiny deterministic StepModel that copies its context, the worst case for a story's loops.

Word level: id 0 ends the text, id 1 marks a paragraph's start (both sequence breakers, as
newlines are for real tokenizers), the rest are WORDS. The prompt is ¶ topic ¶ for a new story
and ¶ paragraph ¶ paragraph ... ¶ for a continuation. At every step the model strongly prefers
the word that followed the last word's previous occurrence (an induction head), so after the
final ¶ it copies the latest paragraph word for word; every other word gets a small fixed score.
It never writes the end of text or ¶ itself, so a paragraph is exactly max_new_tokens words.
"""

from __future__ import annotations

from typing import Any

import torch

from models.base import Prompt
from models.lstm.beam import beam_search
from models.params import GenerationParams

WORDS = tuple(
    "the keeper climbed stairs lamp storm harbour boats ropes night sea light bottle message wave rock "
    "gull wind cold door glass tide shore sand boat hand paper ink letter ship fog bell moon star cliff "
    "rain salt map key".split()
)
EOS, MARK = 0, 1
COPY_BONUS = 4.0  # the copied word's lead over every other word


class CopyingModel:
    """See the module docstring; a StepModel (models.base) with a list of contexts as its batch."""

    name = "copier"
    vocab_size = len(WORDS) + 2
    eos_token_ids = frozenset({EOS})
    ngram_free_tokens: frozenset[int] = frozenset()
    sequence_breaker_tokens = frozenset({EOS, MARK})
    context_window = 4096
    device = torch.device("cpu")

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.scores = torch.rand((self.vocab_size, self.vocab_size), generator=generator)  # (last, next)
        self.scores[:, [EOS, MARK]] = float("-inf")

    def ids(self, text: str) -> list[int]:
        """Words of WORDS keep their id; any other word becomes one of them (by its letters)."""
        index = {w: i + 2 for i, w in enumerate(WORDS)}
        return [index.get(w, 2 + sum(map(ord, w)) % len(WORDS)) for w in text.lower().split()]

    def encode_prompt(self, prompt: Prompt, max_new_tokens: int) -> list[int]:
        ids = [MARK]
        for paragraph in prompt.history or [prompt.topic]:
            ids += self.ids(paragraph) + [MARK]
        return ids

    def decode_text(self, ids: list[int]) -> str:
        return " ".join(WORDS[i - 2] for i in ids if i > MARK)

    def logits(self, context: list[int]) -> torch.Tensor:
        last = context[-1]
        row = self.scores[last].clone()
        earlier = [i for i in range(len(context) - 1) if context[i] == last]
        if earlier:
            row[context[earlier[-1] + 1]] += COPY_BONUS
        return row

    def new_batch(self) -> list[list[int]]:
        return []

    def prefill(self, batch: list[list[int]], prompts: list[list[int]]) -> torch.Tensor:
        batch.extend(list(p) for p in prompts)
        return torch.stack([self.logits(p) for p in prompts])

    def decode(self, batch: list[list[int]], tokens: torch.Tensor) -> torch.Tensor:
        for context, token in zip(batch, tokens.tolist(), strict=True):
            context.append(int(token))
        return torch.stack([self.logits(c) for c in batch])

    def keep(self, batch: list[list[int]], rows: list[int]) -> None:
        batch[:] = [list(batch[r]) for r in rows]

    def beam_search(self, prompt_ids: list[int], params: GenerationParams) -> list[int]:
        return beam_search(self, prompt_ids, params, self.sequence_breaker_tokens)


class RewindingCopyingModel(CopyingModel):
    """The copying model with `rewind`, as every local backend has it."""

    def rewind(self, batch: list[list[int]], row: int, kept: list[int], drop: int) -> None:
        batch[row] = list(kept)


def word_grams(text: str, n: int = 8) -> set[tuple[str, ...]]:
    words = text.split()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


async def final_and_pieces(engine: Any, request: Any) -> tuple[str, list[str]]:
    """A request's final text and every piece streamed before it (what members saw, in order)."""
    handle = engine.submit(request)
    pieces, final = [], ""
    async for event in handle.events():
        if event.kind == "text":
            pieces.append(event.text)
        elif event.kind == "done":
            final = event.text
    return final, pieces
