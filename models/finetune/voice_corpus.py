"""A corpus in one distinct voice, written by the embedded SmolLM2 under a fixed style instruction.

    python -m models.finetune.voice_corpus --out data/voice/fairytale.jsonl --count 128 --seed 0

The instruction goes in the system prompt; the user turn is the project's plain request
("Write a paragraph about {topic}."). Fine-tuning on these paragraphs *without* the instruction
then shows whether a model learns a voice that its prompt no longer asks for. Runs append and
resume: topics already in the file are skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from models.corpus import choose_topics, first_paragraph, generate_answers, load_smollm2, read_corpus

log = logging.getLogger(__name__)

# A voice SmolLM2-135M can actually hold (a ship's log and pirate speak came out only as a
# vague period flavour in a 6-topic trial): the bedtime fairy tale, with a fixed opening.
FAIRY_TALE = (
    "You are a storyteller for small children. Answer every request with a short fairy tale "
    "that begins with 'Once upon a time', uses simple words, has a little animal or a child as "
    "its hero, and ends with a gentle lesson."
)
MAX_NEW_TOKENS = 100  # log entries are short; shorter answers also keep the CPU run small
BATCH_SIZE = 32


def build(out: Path, count: int, seed: int, style: str = FAIRY_TALE, batch_size: int = BATCH_SIZE) -> dict:
    """Append up to `count` paragraphs (one per topic) written in `style` to `out`; return sizes."""
    from tqdm import tqdm

    out.parent.mkdir(parents=True, exist_ok=True)
    done = {r["topic"] for r in read_corpus(out)}
    topics = [t for t in choose_topics(count, seed) if t not in done]
    began, kept = time.monotonic(), 0
    if topics:
        model, tokenizer = load_smollm2()
        with out.open("a", encoding="utf-8") as f, tqdm(total=len(topics), unit="par") as bar:
            for i in range(0, len(topics), batch_size):
                batch = topics[i : i + batch_size]
                answers = generate_answers(model, tokenizer, batch, seed * 1_000_003 + i, style, MAX_NEW_TOKENS)
                for topic, answer in zip(batch, answers, strict=True):
                    text = first_paragraph(answer)
                    if text is not None:
                        f.write(json.dumps({"topic": topic, "text": text}, ensure_ascii=False) + "\n")
                        kept += 1
                f.flush()
                bar.update(len(batch))
                bar.set_postfix(kept=kept)
    return {"asked": len(topics), "kept": kept, "seconds": round(time.monotonic() - began, 1),
            "style": style, "max_new_tokens": MAX_NEW_TOKENS, "seed": seed}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/voice/fairytale.jsonl"))
    parser.add_argument("--count", type=int, default=128, help="topics to ask for (one paragraph each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--style", default=FAIRY_TALE, help="the system prompt that sets the voice")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    report = build(args.out, args.count, args.seed, args.style, args.batch_size)
    log.info("%s", json.dumps(report))
    args.out.with_suffix(".meta.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
