"""A KV cache layer with spare room at the end, for a batch whose rows join and leave.

transformers' DynamicLayer concatenates the whole cache with each new token, so every decode
step copies every row's keys and values (tens to hundreds of MB per step at batch 32-64).
This layer writes new tokens into spare columns and reallocates only when they run out, and
rows join (`add_rows`) and leave (`keep_rows`) with one copy each. Rows are left-padded to a
common length; the attention mask, kept by the backend, hides the padding.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

HEADROOM = 32  # spare token columns; a reallocation copies the cache once per this many steps


class HeadroomLayer(DynamicLayer):
    """One layer's keys and values, (B, H, T, D) views into buffers of (B, H, T + room, D)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        super().__init__()
        self.device = keys.device
        self.is_initialized = True
        self._adopt(keys, values)

    def _adopt(self, keys: torch.Tensor, values: torch.Tensor, room: int = HEADROOM) -> None:
        batch, heads, length, dim = keys.shape
        self._keys = keys.new_empty((batch, heads, length + room, dim))
        self._values = values.new_empty((batch, values.shape[1], length + room, values.shape[3]))
        self._keys[:, :, :length] = keys
        self._values[:, :, :length] = values
        self._set_length(length)

    def _set_length(self, length: int) -> None:
        self.length = length
        self.keys = self._keys[:, :, :length]
        self.values = self._values[:, :, :length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object,
               **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
        new = key_states.shape[-2]
        if self.length + new > self._keys.shape[2]:
            self._adopt(self.keys, self.values, max(HEADROOM, new))
        self._keys[:, :, self.length:self.length + new] = key_states
        self._values[:, :, self.length:self.length + new] = value_states
        self._set_length(self.length + new)
        return self.keys, self.values

    def keep_rows(self, index: torch.Tensor, start: int) -> None:
        """Keep rows `index` (in that order) and drop the first `start` columns (dead padding)."""
        self._keys = self._keys.index_select(0, index)[:, :, start:]
        self._values = self._values.index_select(0, index)[:, :, start:]
        self._set_length(self.length - start)

    def add_rows(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Append rows (B', H, T', D); both sides are left-padded with zeros to the longer length."""
        length = max(self.length, keys.shape[2])
        batch = self._keys.shape[0] + keys.shape[0]
        merged_keys = keys.new_zeros((batch, keys.shape[1], length + HEADROOM, keys.shape[3]))
        merged_values = values.new_zeros((batch, values.shape[1], length + HEADROOM, values.shape[3]))
        old = self._keys.shape[0]
        merged_keys[:old, :, length - self.length:length] = self.keys
        merged_values[:old, :, length - self.length:length] = self.values
        merged_keys[old:, :, length - keys.shape[2]:length] = keys
        merged_values[old:, :, length - values.shape[2]:length] = values
        self._keys, self._values = merged_keys, merged_values
        self._set_length(length)
