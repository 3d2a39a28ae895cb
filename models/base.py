"""The interface every backend offers to the generation engine.

The engine (bot.engine) owns the decode loop and sampling; a backend only turns token ids
into next-token logits for a batch of rows that join and leave between steps (iteration-
level batching, as in vLLM or TGI). The batch state (KV cache, LSTM hidden state, Markov
context) is opaque to the engine: it passes it back on every call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from models.params import GenerationParams


class UnsupportedStrategy(ValueError):
    """A decoding strategy this backend cannot do; the message is for users."""


@dataclass
class Prompt:
    """What the user asked for, before a backend turns it into tokens."""

    topic: str
    history: list[str] = field(default_factory=list)
    """Earlier paragraphs of the story, oldest first (empty for a new story)."""
    direction: str | None = None
    """A hint for what happens next in a continuation."""
    style: str | None = None
    """The voice to write in (tone, genre, audience, language, point of view): chat models read
    it in the system prompt, plain LMs in the prompt header; the LSTM and the Markov chain, which
    condition on the topic's words only, ignore it."""
    cast: tuple[str, ...] = ()
    """The story's proper names (models.story_cast), oldest first: kept by the sampler (DRY and
    the no-repeat ban spare them) and, where it helps, named in the prompt."""


@runtime_checkable
class StepModel(Protocol):
    """A causal model driven one decode step at a time for a batch of rows."""

    name: str
    """Short name shown to users (smollm2, gpt2, lstm, markov, ...)."""
    vocab_size: int
    eos_token_ids: frozenset[int]
    ngram_free_tokens: frozenset[int]
    """Tokens the no-repeat n-gram ban never forbids (word pieces; empty for word-level models)."""
    sequence_breaker_tokens: frozenset[int]
    """Tokens a DRY repeat never spans (newlines, quotes, colons, special tokens; models.dry)."""
    context_window: int
    """Most tokens of prompt plus output the model can attend to."""
    device: torch.device

    def encode_prompt(self, prompt: Prompt, max_new_tokens: int) -> list[int]:
        """Token ids for the prompt, history cut from the left to leave room for the output."""
        ...

    def decode_text(self, ids: list[int]) -> str:
        """Text of generated ids. A backend whose text depends on nearby tokens only says so
        with an attribute `decode_context_tokens` (int); the engine then decodes a short window
        per token (bot/engine/detokenizer.py) instead of every id each time."""
        ...

    def new_batch(self) -> Any:
        """An empty batch state."""
        ...

    def prefill(self, batch: Any, prompts: list[list[int]]) -> torch.Tensor:
        """Append one row per prompt at the end of the batch; return their next-token
        logits, float32 of shape (len(prompts), vocab_size)."""
        ...

    def decode(self, batch: Any, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row (shape (B,), batch order); return (B, vocab_size) logits."""
        ...

    def keep(self, batch: Any, rows: list[int]) -> None:
        """Keep only these rows of the batch, in this order (finished rows leave)."""
        ...

    def beam_search(self, prompt_ids: list[int], params: GenerationParams) -> list[int]:
        """Generated ids of the best beam under `params` (num_beams, lengths, no-repeat size,
        repetition penalty); raise UnsupportedStrategy where it makes no sense."""
        ...
