"""Where fine-tuning text comes from: corpora and text files, and the bot's own stored stories.

Every source becomes `Paragraph`s: the topic a paragraph was written about, the story's earlier
paragraphs, and the paragraph itself; examples.py turns them into the model's own prompt.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from models.text.data import load_examples

TEXT_SUFFIXES = (".jsonl", ".txt", ".md")
# Discord mentions (<@123>, <@!123>, <#123>, <@&123>) and bare snowflake ids (17-20 digits):
# a story shared for training must not carry who or where it came from.
_MENTION = re.compile(r"<(?:@[!&]?|#)\d+>")
_SNOWFLAKE = re.compile(r"\b\d{17,20}\b")


@dataclass(frozen=True)
class Paragraph:
    """One training target: a paragraph, the topic it answers and the story before it."""

    topic: str
    text: str
    history: tuple[str, ...] = ()


def read_files(paths: list[Path]) -> list[Paragraph]:
    """Paragraphs of `.jsonl` corpora ({"topic", "text"}) and `.txt`/`.md` files (blank-line blocks,
    the first words as topic), read the way the LSTM trainer reads them."""
    unknown = [str(p) for p in paths if p.suffix not in TEXT_SUFFIXES]
    if unknown:
        raise ValueError(f"only {', '.join(TEXT_SUFFIXES)} files can be read, not: {', '.join(unknown)}")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError("no such file: " + ", ".join(missing))
    return [Paragraph(e.topic, e.text) for e in load_examples(paths)]


def scrub_ids(text: str) -> str:
    """Text with Discord mentions and raw ids removed, spaces tidied."""
    return " ".join(_SNOWFLAKE.sub("", _MENTION.sub("", text)).split())


def read_stories(db_path: Path) -> list[Paragraph]:
    """Every stored story's paragraphs, each with the story's topic and the paragraphs before it.

    Opened read-only, so the owner's live database is never migrated or written. Only topics and
    turn texts are selected (never guild, channel, thread, author or message ids), and mentions
    inside the text are scrubbed. Stories removed by /forget or retention are deleted rows, so
    they are simply not there.
    """
    if not db_path.is_file():
        raise ValueError(f"no database at {db_path}")
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT s.id, s.topic, t.text FROM stories s JOIN turns t ON t.story_id = s.id "
            "ORDER BY s.id, t.position"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{db_path} is not a storybot database ({exc})") from exc
    finally:
        conn.close()
    paragraphs: list[Paragraph] = []
    seen: set[Paragraph] = set()  # a branch starts with copies of its original's paragraphs: train on them once
    history: list[str] = []
    current = None
    for story_id, topic, text in rows:
        if story_id != current:
            current, history = story_id, []
        clean = scrub_ids(text)
        if clean:
            paragraph = Paragraph(scrub_ids(topic), clean, tuple(history))
            if paragraph not in seen:
                seen.add(paragraph)
                paragraphs.append(paragraph)
            history.append(clean)
    return paragraphs


def gather(paths: list[Path], db_path: Path | None = None) -> list[Paragraph]:
    """All paragraphs from the files and (when given) the bot's database."""
    paragraphs = read_files(paths) if paths else []
    if db_path is not None:
        paragraphs += read_stories(db_path)
    if not paragraphs:
        raise ValueError("no paragraphs to train on: give corpus files or --from-db")
    return paragraphs
