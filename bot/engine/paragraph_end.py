"""Where a paragraph ends: the first blank line written after the minimum length, unless the
text before it only echoes the topic back (small chat models often start with the topic as a
title). Pure functions, so the engine's rows and the tests share them."""

from __future__ import annotations

import re

_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_NOT_WORDS = re.compile(r"[\W_]+")


def words_of(text: str) -> str:
    """Lower-case words only: markdown, mentions' brackets and punctuation do not count."""
    return " ".join(_NOT_WORDS.sub(" ", text.lower()).split())


def is_topic_echo(text: str, topic: str) -> bool:
    """Whether `text` says nothing but (part of) the topic, as a title would."""
    said = words_of(text)
    return not said or (bool(topic) and said in words_of(topic))


def paragraph_end(text: str, floor: int, shown: int, topic: str) -> int | None:
    """The index where the first paragraph of `text` ends, or None if it has not ended yet.

    A blank line counts once more text follows it, if it was completed after the first `floor`
    characters (the text written before the minimum length), starts at or after `shown` (text
    already streamed is never cut), and what comes before it is more than the echoed topic.
    """
    body = text.rstrip()
    for match in _BLANK_LINE.finditer(body, max(0, shown)):
        if match.end() <= floor or is_topic_echo(body[:match.start()], topic):
            continue
        return match.start()
    return None
