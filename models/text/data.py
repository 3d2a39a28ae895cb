"""Training examples for the word-level backends: reading corpora and the held-out split.

Both the LSTM and the Markov chain read examples through here, so they train and are
measured on exactly the same split.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

TOPIC_WORDS = 5  # plain-text paragraphs take their first words as the topic
MIN_PARAGRAPH_WORDS = 8  # shorter plain-text blocks are headings or page furniture
VAL_FRACTION = 0.1
SPLIT_SEED = 0
# The project's data folder: the corpus, and the LSTM's checkpoints under lstm/.
DATA_DIR = Path(__file__).resolve().parents[2] / "data"
CORPUS = DATA_DIR / "corpus.jsonl"
LSTM_DIR = DATA_DIR / "lstm"


@dataclass(frozen=True)
class Example:
    """One paragraph and the topic it was written about."""

    topic: str
    text: str


def read_jsonl(path: Path) -> list[Example]:
    """Examples of a corpus written by models.corpus ({"topic", "text"} per line)."""
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [Example(str(r["topic"]), str(r["text"])) for r in rows if r.get("text")]


def read_text(path: Path) -> list[Example]:
    """Paragraphs (blocks between blank lines) of a plain-text file; each takes its first
    TOPIC_WORDS words as its topic and keeps its whole text."""
    raw = path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")
    examples = []
    for block in re.split(r"\n\s*\n", raw):
        words = block.split()
        if len(words) >= MIN_PARAGRAPH_WORDS:
            examples.append(Example(" ".join(words[:TOPIC_WORDS]), " ".join(words)))
    return examples


def load_examples(paths: Iterable[Path | str]) -> list[Example]:
    """Examples from every file: `.jsonl` as a generated corpus, anything else as plain text."""
    examples: list[Example] = []
    for p in map(Path, paths):
        examples += read_jsonl(p) if p.suffix == ".jsonl" else read_text(p)
    if not examples:
        raise ValueError("no paragraphs found in " + ", ".join(map(str, paths)))
    return examples


class HasTopic(Protocol):
    @property
    def topic(self) -> str: ...


T = TypeVar("T", bound=HasTopic)


def split_examples(
    examples: Sequence[T], val_fraction: float = VAL_FRACTION, seed: int = SPLIT_SEED
) -> tuple[list[T], list[T]]:
    """(train, held-out), split by topic so held-out topics were never seen in training.

    Topics are sorted before the seeded shuffle, so the split depends only on the set of
    topics and the seed, not on the order of the corpus file. At least one topic is held
    out and at least one kept whenever there are two or more.
    """
    topics = sorted({e.topic for e in examples})
    random.Random(seed).shuffle(topics)
    n_val = min(max(1, round(len(topics) * val_fraction)), len(topics) - 1) if len(topics) > 1 else 0
    held_out = set(topics[:n_val])
    train = [e for e in examples if e.topic not in held_out]
    val = [e for e in examples if e.topic in held_out]
    return train, val
