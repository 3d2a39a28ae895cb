"""Beam search's own path: the beams of one request share a prompt, so the backend runs them
whole (transformers' generate, the LSTM's beam search) instead of as rows of the batch."""

from __future__ import annotations

import dataclasses

from bot.engine.endings import RequestEnds
from bot.engine.metrics import Metrics
from bot.engine.requests import Event, Failure, RequestHandle, Row
from models.base import StepModel, UnsupportedStrategy
from models.params import GenerationParams


def write_with_beams(handle: RequestHandle, model: StepModel, prompt_ids: list[int], params: GenerationParams,
                     ends: RequestEnds, metrics: Metrics) -> None:
    """Write `handle`'s paragraph by beam search and end the request."""
    try:
        # DRY is for continuations (see RowSampling.create): a first paragraph is written without it.
        beam_params = params if handle.request.prompt.history else dataclasses.replace(params, dry_multiplier=0.0)
        ids = model.beam_search(prompt_ids, beam_params)
    except UnsupportedStrategy as error:
        ends.finish(handle, Event("error", text=str(error), failure=Failure.REQUEST_FAILED))
        return
    row = Row.start(handle, 0, prompt_ids, params, model, None)
    for token in ids:
        row.sampling.push(token)
    metrics.tokens(len(ids))
    handle.tokens_written += len(ids)
    row.finish(model.decode_text(ids), "length" if len(ids) >= params.max_new_tokens else "stop")
    ends.deliver_final(row)
