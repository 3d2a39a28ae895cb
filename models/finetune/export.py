"""Write the fine-tuned model as a regular transformers folder the bot loads by its path."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from models.finetune.adapters import merged

log = logging.getLogger(__name__)


def export_folder(model: Any, tokenizer: Any, out: Path, report: dict[str, Any]) -> Path:
    """Merged weights (safetensors), config, generation config and tokenizer with its chat
    template, plus `finetune.json` (how it was made and the perplexities). Returns `out`.

    A model loaded from the embedded GGUF is saved de-quantized: the folder loads with plain
    `from_pretrained(out)`, which is what `models.hf.load_hf_model` does for a folder path.
    """
    out.mkdir(parents=True, exist_ok=True)
    plain = merged(model)
    _forget_gguf_origin(plain)
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "finetune.json").write_text(json.dumps(report, indent=2))
    log.info("wrote %s", out)
    return out


def _forget_gguf_origin(model: Any) -> None:
    """transformers de-quantizes a GGUF file to float weights on load but keeps its quantizer,
    which refuses to save ("not serializable"); with every weight a float there is nothing
    quantized left, so drop it the way transformers itself does for de-quantized models."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and all(p.is_floating_point() for p in model.parameters()):
        quantizer.remove_quantization_config(model)
