"""Micro-benchmark: turning a paragraph's tokens into text, one token at a time, before and after.

    python -m bench.detokenizer [--model smollm2] [--tokens 512] [--repeat 5]

"before" is what `Row.step` did until the incremental detokenizer: decode every generated id
again on each new token (work that grows with the square of the paragraph's length). "after"
is `bot.engine.detokenizer.IncrementalDetokenizer` on the model's own `decode_text`. Both run
on the same ids in the same process; the text they end with is checked to be equal. The ids
are the corpus's paragraphs (and a line of accents, CJK and emoji) in the model's tokenizer.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from bot.engine.detokenizer import IncrementalDetokenizer
from models.registry import CORPUS, load_model

MULTI_BYTE = " Zoë's café served crème brûlée, 漢字 and 🐉🌊 by the lighthouse. "


def paragraph_ids(model: object, tokens: int) -> list[int]:
    tokenizer = getattr(model, "tokenizer")  # noqa: B009  # a transformers backend
    lines = [json.loads(line)["text"] for line in CORPUS.read_text(encoding="utf-8").splitlines()[:40]]
    ids = tokenizer.encode(MULTI_BYTE.join(lines), add_special_tokens=False)
    return list(ids[:tokens])


def before(decode: object, ids: list[int]) -> str:
    text = ""
    for count in range(1, len(ids) + 1):
        text = decode(ids[:count]).lstrip()  # type: ignore[operator]
    return text


def after(decode: object, ids: list[int], context: int | None) -> str:
    detokenizer = IncrementalDetokenizer(decode, context)  # type: ignore[arg-type]
    for token in ids:
        detokenizer.push(token)
    return detokenizer.text.lstrip()


def best_of(repeat: int, run: object) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    model = load_model(args.model, torch.device("cpu"))
    ids = paragraph_ids(model, args.tokens)
    context = getattr(model, "decode_context_tokens", None)
    full = model.decode_text(ids).lstrip()
    assert before(model.decode_text, ids) == full
    assert after(model.decode_text, ids, context) == full, "the incremental text differs from a full decode"
    old = best_of(args.repeat, lambda: before(model.decode_text, ids))
    new = best_of(args.repeat, lambda: after(model.decode_text, ids, context))
    print(f"model {args.model}, {len(ids)} tokens, best of {args.repeat}")
    print(f"before (whole decode per token): {old * 1000:.1f} ms per paragraph, "
          f"{old / len(ids) * 1e6:.0f} us per token")
    print(f"after (incremental):             {new * 1000:.1f} ms per paragraph, "
          f"{new / len(ids) * 1e6:.0f} us per token")
    print(f"before/after={old / new:.1f} tokens={len(ids)}")


if __name__ == "__main__":
    main()
