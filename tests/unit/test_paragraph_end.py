"""Where a paragraph ends (bot.engine.paragraph_end), without a model."""

from __future__ import annotations

from bot.engine.paragraph_end import is_topic_echo, paragraph_end


def test_the_first_blank_line_after_the_minimum_ends_the_paragraph() -> None:
    text = "One sentence. Two sentences.\n\nA second paragraph"
    assert paragraph_end(text, floor=5, shown=10, topic="owls") == text.index("\n\n")


def test_a_blank_line_written_before_the_minimum_is_skipped() -> None:
    text = "Early words.\n\nLater words.\n\nMore"
    assert paragraph_end(text, floor=len("Early words.\n\n"), shown=0, topic="owls") == text.index("\n\nMore")


def test_a_blank_line_inside_text_already_shown_is_skipped() -> None:
    text = "Shown.\n\nAlso shown. New\n\nMore"
    assert paragraph_end(text, floor=0, shown=len("Shown.\n\nAlso"), topic="x") == text.rindex("\n\n")


def test_an_echoed_topic_is_not_a_paragraph() -> None:
    text = "**The Owls of Night**\n\nThey hunt."
    assert paragraph_end(text, floor=0, shown=0, topic="the owls of night") is None
    assert is_topic_echo("@everyone <@&123> **unclosed bold", "@everyone <@&123> **unclosed bold")
    assert not is_topic_echo("Owls hunt at night, silent and patient.", "owls")


def test_a_trailing_blank_line_waits_for_more_text() -> None:
    assert paragraph_end("A paragraph.\n\n", floor=0, shown=0, topic="x") is None
