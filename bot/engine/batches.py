"""One model's running batch: its rows and its opaque state, and how it is rebuilt smaller."""

from __future__ import annotations

import torch

from bot.engine.requests import Row
from models.base import StepModel


class ModelBatch:
    """One model's running rows and its opaque batch state."""

    def __init__(self, model: StepModel) -> None:
        self.model = model
        self.state = model.new_batch()
        self.rows: list[Row] = []


def reprefill(batch: ModelBatch, chunk: int) -> torch.Tensor:
    """Re-prefill every row (prompt + text so far) in chunks of `chunk` rows (after an out of
    memory error shrank the batch limit) and return the logits the failed step would have given."""
    if batch.model.device.type == "cuda":
        torch.cuda.empty_cache()
    batch.state = batch.model.new_batch()
    pieces = []
    chunk = max(1, chunk)
    for start in range(0, len(batch.rows), chunk):
        rows = batch.rows[start:start + chunk]
        pieces.append(batch.model.prefill(batch.state, [(r.prompt_ids + r.sampling.generated)[:-1]
                                                        for r in rows]))
    # prefill returns the logits after generated[:-1]: re-choose the last token's successor
    # by decoding it once more, exactly as the failed step would have.
    tokens = torch.tensor([r.next_input for r in batch.rows], dtype=torch.long)
    del pieces
    return batch.model.decode(batch.state, tokens)
