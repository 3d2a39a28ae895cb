"""Each tensor's block type in a GGUF file, read from its header alone.

gguf's GGUFReader parses every metadata field into numpy views first: for SmolLM2's file (a
49k-word vocabulary and its merges in the metadata) that took 5 s a read, and start-up read the
file once more than transformers does just to learn the decoder's block type. This walks the
header with `struct`, skipping the metadata values, in milliseconds.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from gguf import GGMLQuantizationType

MAGIC = b"GGUF"
# Fixed sizes of GGUF's scalar value types (gguf.GGUFValueType): u8 i8 u16 i16 u32 i32 f32 bool _ _ u64 i64 f64
SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
STRING, ARRAY = 8, 9


class _Cursor:
    def __init__(self, data: mmap.mmap) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        length = self.take("<Q")
        self.at += length
        return self.data[self.at - length:self.at].decode("utf-8", errors="replace")

    def skip_value(self, kind: int) -> None:
        if kind == STRING:
            length = self.take("<Q")  # read first: `self.at += self.take(...)` would lose take's step
            self.at += length
        elif kind == ARRAY:
            item, count = self.take("<I"), self.take("<Q")
            if item in SCALAR_SIZES:
                self.at += SCALAR_SIZES[item] * count  # (take has run already: count is a local)
            else:
                for _ in range(count):
                    self.skip_value(item)
        elif kind in SCALAR_SIZES:
            self.at += SCALAR_SIZES[kind]
        else:
            raise ValueError(f"unknown GGUF value type {kind}")


def gguf_tensor_types(path: Path) -> dict[str, str]:
    """{tensor name: block type name ("Q4_1", "Q8_0", "F32"...)} from a GGUF file (version 2 or 3)."""
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != MAGIC:
            raise ValueError(f"{path.name} is not a GGUF file")
        cursor = _Cursor(data)
        cursor.at = 4
        version = cursor.take("<I")
        if version < 2:
            raise ValueError(f"GGUF version {version} is not supported")
        tensors, fields = cursor.take("<Q"), cursor.take("<Q")
        for _ in range(fields):
            cursor.string()
            cursor.skip_value(cursor.take("<I"))
        types = {}
        for _ in range(tensors):
            name = cursor.string()
            dimensions = cursor.take("<I")
            cursor.at += 8 * dimensions
            types[name] = GGMLQuantizationType(cursor.take("<I")).name
            cursor.take("<Q")  # the data's offset
        return types
