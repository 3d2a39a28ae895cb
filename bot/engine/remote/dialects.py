"""Settings as each server's OpenAI-compatible API takes them, and those it cannot honour.

temperature, top_p, max_tokens, seed and stop are OpenAI's own fields and go everywhere; the
rest are extra fields at the body's root (the `openai` client's `extra_body`), named as each
server names them (../shared/notes/serving.md): vLLM and SGLang take top_k, min_tokens and
repetition_penalty; llama.cpp's server top_k, repeat_penalty and DRY; Ollama's /v1 and OpenAI
itself none of them. A setting in effect that a server cannot honour is named by
`unsupported`, so /settings show and /write can say so: nothing is dropped silently.
"""

from __future__ import annotations

from typing import Any

from bot.engine.remote.spec import Dialect
from models.params import GenerationParams

TOP_K = {"vllm": "top_k", "sglang": "top_k", "llamacpp": "top_k"}
REPETITION_PENALTY = {"vllm": "repetition_penalty", "sglang": "repetition_penalty", "llamacpp": "repeat_penalty"}
MIN_TOKENS = {"vllm": "min_tokens", "sglang": "min_tokens"}
IGNORE_EOS = {"vllm": "ignore_eos", "sglang": "ignore_eos", "llamacpp": "ignore_eos"}
WITH_DRY = ("llamacpp",)
# Servers that write several choices for one request (`n`); the others get one request per variant.
WITH_N = ("vllm", "sglang", "openai")
DRY_FIELDS = ("dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n")


def takes_n(dialect: Dialect) -> bool:
    """Whether the server writes several variants in one request."""
    return dialect in WITH_N


def unsupported(params: GenerationParams, dialect: Dialect) -> tuple[str, ...]:
    """Names of the settings in effect that this dialect cannot honour (empty when all are)."""
    missing: list[str] = []
    if params.strategy == "beam":
        missing.append("strategy")  # no server here runs beam search: greedy stands in
    if params.effective_top_k and dialect not in TOP_K:
        missing.append("top_k")
    if params.no_repeat_ngram_size:
        missing.append("no_repeat_ngram_size")  # no server has it (nearest: DRY, repetition detection)
    if params.repetition_penalty != 1.0 and dialect not in REPETITION_PENALTY:
        missing.append("repetition_penalty")
    if params.min_new_tokens and dialect not in MIN_TOKENS:
        missing.append("min_new_tokens")
    if params.dry_multiplier and params.dry_penalty_last_n and dialect not in WITH_DRY:
        missing.append("dry_multiplier")
    return tuple(missing)


def sampling_fields(params: GenerationParams, dialect: Dialect, seed: int | None, *,
                    n: int = 1, continuation: bool = False) -> dict[str, Any]:
    """The body's sampling fields for one request (OpenAI's and the dialect's extras together:
    the server reads them all at the root). DRY, as in the engine, only for a continuation."""
    greedy = not params.do_sample
    body: dict[str, Any] = {
        "max_tokens": params.max_new_tokens,
        "temperature": 0.0 if greedy else params.temperature,
        "top_p": 1.0 if greedy else params.effective_top_p,
    }
    if seed is not None and not greedy:
        body["seed"] = seed
    if params.stop:
        body["stop"] = [params.stop]
    if n > 1:
        body["n"] = n
    if not greedy and params.effective_top_k and dialect in TOP_K:
        body[TOP_K[dialect]] = params.effective_top_k
    if params.repetition_penalty != 1.0 and dialect in REPETITION_PENALTY:
        body[REPETITION_PENALTY[dialect]] = params.repetition_penalty
    if params.min_new_tokens and dialect in MIN_TOKENS:
        body[MIN_TOKENS[dialect]] = params.min_new_tokens
    if params.ignore_eos and dialect in IGNORE_EOS:
        body[IGNORE_EOS[dialect]] = True
    if continuation and params.dry_multiplier and dialect in WITH_DRY:
        body.update({name: getattr(params, name) for name in DRY_FIELDS})
    return body
