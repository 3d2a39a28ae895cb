"""A row that wrote a banned phrase goes back to where the phrase began and writes on another way.

The way KoboldCpp's banned strings work: the row forgets the phrase's tokens (its model state
too: KV cache columns, LSTM state, Markov context), forbids the token the phrase began with at
that position (models.sampling) and samples again. Nothing of the phrase was shown (the text
that could grow into one is held back: bot/engine/banned_phrases.py), so members never see text
taken back. A row that keeps writing banned phrases ends its paragraph before the last one.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.engine.requests import Row
from models.base import StepModel

log = logging.getLogger(__name__)

MAX_REWINDS = 16  # per row: a model that finds only banned ways on ends before the phrase


def rewind(row: Row, model: StepModel, state: Any, index: int) -> None:
    """Send `row` (row `index` of the model's batch `state`) back to `row.rewind_to`."""
    position, phrase_at = row.rewind_to, row.banned_at
    row.rewind_to = row.banned_at = None
    if position is None:
        return
    shown = row.text[:row.sent]
    if row.rewinds >= MAX_REWINDS:
        row.finish(row.text[:phrase_at] if phrase_at is not None else shown, "stop")
        return
    row.rewinds += 1
    removed = len(row.sampling.generated) - position
    row.sampling.rewind(position)
    row.detokenizer = row.detokenizer.truncated(position)
    row.text = row.detokenizer.text.lstrip()
    del row.ends[position:]
    row.floor = min(row.floor, len(row.text))
    if not row.text.startswith(shown):  # cannot happen while text is held back; never unshow it
        log.warning("a rewind would take back shown text; the paragraph ends there")
        row.finish(shown, "stop")
        return
    # The model holds the prompt and every written token but the last (fed at the next step).
    kept = row.prompt_ids + row.sampling.generated
    model.rewind(state, index, kept[:-1], removed)  # type: ignore[attr-defined]
