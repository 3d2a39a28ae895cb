"""A KV cache layer with spare room at the end, for a batch whose rows join and leave.

transformers' DynamicLayer concatenates the whole cache with each new token, so every decode
step copies every row's keys and values (tens to hundreds of MB per step at batch 32-64).
This layer writes new tokens into spare columns and reallocates only when they run out, and
rows join (`add_rows`) and leave (`keep_rows`) with one copy each. Rows are left-padded to a
common length; the attention mask, kept by the backend, hides the padding.
"""

from __future__ import annotations

import math
import mmap

import torch
from transformers.cache_utils import DynamicLayer

HEADROOM = 32  # spare token columns; a reallocation copies the cache once per this many steps


def new_buffer(like: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A zero-filled tensor for cache data. On the CPU it lives in its own memory mapping, so
    when the cache outgrows it the memory goes back to the OS at once: from malloc's heap the
    outgrown buffers stayed resident (measured: peak RSS up to twice the live cache)."""
    count = math.prod(shape)
    if like.device.type != "cpu" or count == 0:
        return like.new_zeros(shape)
    region = mmap.mmap(-1, count * like.element_size())  # anonymous: zero pages, freed by munmap
    return torch.frombuffer(region, dtype=like.dtype, count=count).view(shape)


class HeadroomLayer(DynamicLayer):
    """One layer's keys and values, (B, H, T, D) views into buffers of (B + spare, H, T + room, D):
    rows that leave are compacted in place, so their space is reused rather than reallocated."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        super().__init__()
        self.device = keys.device
        self.is_initialized = True
        self._adopt(keys, values)

    def _adopt(self, keys: torch.Tensor, values: torch.Tensor, room: int = HEADROOM) -> None:
        batch, heads, length, dim = keys.shape
        self._keys = new_buffer(keys, (batch, heads, length + room, dim))
        self._values = new_buffer(values, (batch, values.shape[1], length + room, values.shape[3]))
        self._keys[:, :, :length] = keys
        self._values[:, :, :length] = values
        self.rows = batch
        self._set_length(length)

    def _set_length(self, length: int) -> None:
        self.length = length
        self.keys, self.values = self.live()

    def live(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The keys and values of the live rows and columns (views, no copy)."""
        return self._keys[:self.rows, :, :self.length], self._values[:self.rows, :, :self.length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object,
               **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
        new = key_states.shape[-2]
        self.reserve(new)
        self._keys[:self.rows, :, self.length:self.length + new] = key_states
        self._values[:self.rows, :, self.length:self.length + new] = value_states
        self._set_length(self.length + new)
        return self.live()

    def reserve(self, new: int) -> None:
        """Make room for `new` more columns (a writer outside `update`, the native step, needs it)."""
        if self.length + new > self._keys.shape[2]:
            self._adopt(*self.live(), max(HEADROOM, new))

    def buffers(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole key and value buffers (B+, H, T + room, D): columns past `length` are free."""
        return self._keys, self._values

    def advance(self, new: int) -> None:
        """Count `new` columns written into `buffers()` in place as live."""
        self._set_length(self.length + new)

    def keep_rows(self, index: torch.Tensor, start: int) -> None:
        """Keep rows `index` (in that order) and drop the first `start` columns (dead padding)."""
        order = index.tolist()
        if all(a < b for a, b in zip(order, order[1:], strict=False)):
            # Rows leaving a batch keep their order: move the later ones up, no new memory.
            for target, source in enumerate(order):
                if target != source:
                    self._keys[target, :, :self.length] = self._keys[source, :, :self.length]
                    self._values[target, :, :self.length] = self._values[source, :, :self.length]
        else:
            self._keys = self._kept(self._keys[:self.rows], index)
            self._values = self._kept(self._values[:self.rows], index)
        self.rows = len(order)
        self._keys = self._keys[:, :, start:]
        self._values = self._values[:, :, start:]
        self._set_length(self.length - start)

    def add_rows(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Append rows (B', H, T', D); both sides are left-padded with zeros to the longer length."""
        old, joining, prompt = self.rows, keys.shape[0], keys.shape[2]
        if prompt <= self.length and old + joining <= self._keys.shape[0]:
            # Rows that left made room, and the prompts fit the current length: no copy of the
            # cache, the new rows move into the spare ones, left-padded to the batch's length.
            for buffer, states in ((self._keys, keys), (self._values, values)):
                buffer[old:old + joining, :, :self.length - prompt] = 0
                buffer[old:old + joining, :, self.length - prompt:self.length] = states
            self.rows = old + joining
            self._set_length(self.length)
            return
        length = max(self.length, prompt)
        batch = old + joining
        merged_keys = new_buffer(keys, (batch, keys.shape[1], length + HEADROOM, keys.shape[3]))
        merged_values = new_buffer(values, (batch, values.shape[1], length + HEADROOM, values.shape[3]))
        live_keys, live_values = self.live()
        merged_keys[:old, :, length - self.length:length] = live_keys
        merged_values[:old, :, length - self.length:length] = live_values
        merged_keys[old:, :, length - keys.shape[2]:length] = keys
        merged_values[old:, :, length - values.shape[2]:length] = values
        self._keys, self._values = merged_keys, merged_values
        self.rows = batch
        self._set_length(length)

    @staticmethod
    def _kept(buffer: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        kept = new_buffer(buffer, (len(index), *buffer.shape[1:]))
        return torch.index_select(buffer, 0, index, out=kept)
