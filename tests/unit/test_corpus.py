"""The corpus builder's pure parts: answer parsing, topic choice, resuming and the report.
SmolLM2 itself is not loaded here."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from models.corpus import Job, choose_topics, first_paragraph, pending_jobs, trim_to_sentence, write_report
from models.corpus_topics import TOPICS

LONG = (
    "Honey bees live in large colonies where thousands of workers share the labour, "
    "gathering nectar and pollen from flowers across the fields near the hive."
)


def test_first_paragraph_is_the_first_block_of_prose() -> None:
    answer = f"{LONG} They dance to share directions.\n\nThis paragraph highlights the bees."
    assert first_paragraph(answer) == f"{LONG} They dance to share directions."


def test_lead_in_and_title_lines_are_skipped() -> None:
    assert first_paragraph(f"Here's a paragraph about honey bees:\n\n{LONG}") == LONG
    assert first_paragraph(f"**Honey Bees**\n{LONG}") == LONG
    assert first_paragraph(f"# The Hive\n\n{LONG}") == LONG


def test_an_unfinished_last_sentence_is_trimmed() -> None:
    assert first_paragraph(f"{LONG} Then the queen") == LONG
    assert trim_to_sentence("No sentence ends here") == ""


def test_lines_of_one_paragraph_are_joined_and_quotes_unwrapped() -> None:
    assert first_paragraph(LONG.replace("labour, ", "labour,\n")) == LONG
    assert first_paragraph(f'"{LONG}"') == LONG


def test_too_short_answers_are_dropped() -> None:
    assert first_paragraph("Bees are nice.") is None
    assert first_paragraph("") is None


def test_there_are_several_hundred_distinct_topics_and_the_choice_is_seeded() -> None:
    assert len(TOPICS) >= 300 and len(set(TOPICS)) == len(TOPICS)
    assert choose_topics(50, seed=1) == choose_topics(50, seed=1)
    assert choose_topics(50, seed=1) != choose_topics(50, seed=2)
    assert len(choose_topics(10**6, seed=0)) == len(TOPICS)


def test_pending_jobs_go_round_robin_and_skip_what_the_file_has() -> None:
    jobs = pending_jobs(["a", "b"], per_topic=2, done=Counter({"a": 1}))
    assert jobs == [Job("b", 0), Job("a", 1), Job("b", 1)]


def test_report_records_sizes_model_and_licence(tmp_path: Path) -> None:
    out = tmp_path / "corpus.jsonl"
    out.write_text("".join(json.dumps({"topic": t, "text": LONG}) + "\n" for t in ("bees", "owls")))
    meta = {
        "command": "python -m models.corpus --topics 2",
        "seed": 7,
        "per_topic": 1,
        "seconds": 90,
        "runs": 1,
    }
    report = write_report(out, meta).read_text()
    assert "Paragraphs: 2" in report and f"Words: {2 * len(LONG.split())}" in report
    assert "Apache-2.0" in report and "SmolLM2" in report and "Seed: 7" in report
