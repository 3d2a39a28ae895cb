"""A request's prompt and length cut so that prompt plus output fit the model's context window."""

from __future__ import annotations

import dataclasses

from models.params import GenerationParams

# A prompt cut to fit the context window still leaves room for this many tokens (the shortest length).
MIN_OUTPUT_ROOM = 8


def fit_to_window(prompt_ids: list[int], params: GenerationParams,
                  window: int) -> tuple[list[int], GenerationParams]:
    """The prompt and settings of a request, cut so that prompt plus output fit the context window.

    A position past the window fails the decode step of the whole batch, so one long prompt (a
    topic in a script the tokenizer splits into bytes, say) must never get there: the prompt
    keeps its newest tokens, and the length shrinks to the room that is left.
    """
    prompt_ids = prompt_ids[-max(1, window - MIN_OUTPUT_ROOM):]
    room = window - len(prompt_ids)
    if params.max_new_tokens <= room:
        return prompt_ids, params
    return prompt_ids, dataclasses.replace(params, max_new_tokens=room,
                                           min_new_tokens=min(params.min_new_tokens, room))
