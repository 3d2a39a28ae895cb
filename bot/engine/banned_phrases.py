"""Phrases a row must never write, found in its text as it grows (KoboldCpp's "banned strings").

A local row that writes one rewinds to where the phrase began, forbids the token it began with
there and writes on (bot/engine/rewind.py); a remote row, whose server cannot rewind, ends its
paragraph before the phrase. Either way the phrase is never shown: text that could still grow
into one is held back (`held_from`), so what members see is never taken back.

Matching ignores case. A phrase that starts with a capital letter counts only where it starts a
sentence ("The story" bans "...night. The story goes on" but not "she told the story of"), one
that ends in a letter only where a word ends ("The story" is not "The storyteller"), and a
phrase marked `line_start` only at the start of the text or of a line (a numbered list).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# The ways SmolLM2 talks about a story instead of telling it (bench.story's reading found them:
# "The story continues, and I am pleased to share...", "In this tale, I will continue...",
# "This is not a retelling of..."), and list or markup that no paragraph of prose has.
BUILT_IN_PHRASES: tuple[str, ...] = (
    "The story", "This story", "Our story", "In this story", "The tale", "This tale", "In this tale",
    "This is not a", "The narrative", "This narrative", "This paragraph", "In this paragraph",
    "The next paragraph", "The following paragraph", "The previous paragraph", "In the next chapter",
    "I am pleased to", "I'm pleased to", "I will continue", "I'll continue", "Let me", "Here is",
    "Here's", "Title:", "Note:", "Chapter ", "In conclusion", "retelling", "continuation of", "#",
)
LINE_START_PHRASES: tuple[str, ...] = ("1.", "1)", "- ", "* ")  # a list where prose should be
_SENTENCE_ENDS = ".!?"
_CLOSERS = "\"'\u201d\u2019)]*"


@dataclass(frozen=True)
class Phrase:
    text: str  # lower case
    sentence_start: bool  # written with a capital letter: only where a sentence starts
    line_start: bool = False

    @property
    def needs_word_end(self) -> bool:
        return self.text[-1:].isalnum()


def _starts_sentence(text: str, index: int) -> bool:
    before = text[:index].rstrip(" \t")
    if not before or before.endswith("\n"):
        return True
    if len(before) == index:  # no space between: inside a word
        return False
    # After an opening quote is dialogue: a character may say "Here is the key".
    return before.rstrip(_CLOSERS)[-1:] in _SENTENCE_ENDS


def _starts_line(text: str, index: int) -> bool:
    return text[:index].strip(" \t") == "" or text[:index].rstrip(" \t").endswith("\n")


class BannedPhrases:
    """A row's banned phrases: the built-in ones and a place's own (GenerationParams.banned_phrases)."""

    def __init__(self, phrases: Iterable[str], line_start: Iterable[str] = ()) -> None:
        found = {p.lower(): Phrase(p.lower(), p[:1].isupper()) for p in phrases if p.strip()}
        found |= {p.lower(): Phrase(p.lower(), False, True) for p in line_start if p.strip()}
        self.phrases = tuple(found.values())
        self.longest = max((len(p.text) for p in self.phrases), default=0)
        self._by_first: dict[str, tuple[Phrase, ...]] = {}  # a step looks only at phrases that fit
        for phrase in self.phrases:
            self._by_first[phrase.text[0]] = (*self._by_first.get(phrase.text[0], ()), phrase)

    @classmethod
    def for_row(cls, own: Iterable[str]) -> BannedPhrases:
        """The built-in phrases and a place's own."""
        return cls((*BUILT_IN_PHRASES, *own), LINE_START_PHRASES)

    def __bool__(self) -> bool:
        return bool(self.phrases)

    def _may_start(self, phrase: Phrase, text: str, index: int) -> bool:
        if phrase.line_start:
            return _starts_line(text, index)
        if index and text[index - 1].isalnum() and phrase.text[:1].isalnum():
            return False  # inside a word
        return not phrase.sentence_start or _starts_sentence(text, index)

    def find(self, text: str, start: int = 0, ended: bool = False) -> int | None:
        """Where the first banned phrase at or after `start` begins, if one is complete in
        `text` (`ended`: no more text follows, so a phrase at the very end is complete)."""
        lower = text.lower()
        for index in range(max(0, start), len(text)):
            for phrase in self._by_first.get(lower[index], ()):
                end = index + len(phrase.text)
                if not lower.startswith(phrase.text, index) or not self._may_start(phrase, text, index):
                    continue
                if not phrase.needs_word_end or (end < len(text) and not text[end].isalnum()) or (
                        end == len(text) and ended):
                    return index
        return None

    def held_from(self, text: str, start: int) -> int:
        """Where the text that could still grow into a banned phrase begins (len(text) if none):
        everything from there on waits until it is known not to be one."""
        lower = text.lower()
        for index in range(max(0, start, len(text) - self.longest), len(text)):
            tail = lower[index:]
            for phrase in self._by_first.get(tail[0], ()):
                if phrase.text.startswith(tail) and self._may_start(phrase, text, index):
                    return index  # the phrase so far, or all of it awaiting its word's end
        return len(text)
