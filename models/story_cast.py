"""A story's cast: the proper names its paragraphs introduce, so later paragraphs keep them.

A name is a capitalised word that is not the first word of a sentence (where every word is
capitalised), or one that opens a sentence and also appears capitalised inside another; runs
of such words ("Elena Rosa") make one name. Pronouns and the like ("I", "I'm") are never names.
The cast is stored with the story (bot.storage), copied by a branch, shown to chat models in
the prompt, and spared by DRY and the no-repeat ban (models.sampling): repeating a name is
what a story must do, not a loop.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_CAST = 12  # names kept per story: the main characters and places, not every passing word
MAX_NAME_CHARS = 40
_WORD = re.compile(r"[A-Za-z\u00c0-\u024f][A-Za-z\u00c0-\u024f'\-]*")
# Capitalised words that are not names even inside a sentence.
NOT_NAMES = frozenset({
    "i", "i'm", "i'd", "i'll", "i've", "mr", "mrs", "ms", "dr", "sir", "madam", "lord", "lady",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "god", "english", "the", "a", "an", "and", "but", "or",
    "as", "in", "on", "at", "of", "to", "with", "for", "from", "by", "it", "he", "she", "they",
    "we", "you", "his", "her", "their", "our", "my", "this", "that", "these", "those", "there",
    "chapter", "story", "tale", "ok", "oh", "yes", "no", "not", "then", "suddenly", "when", "after",
    "before", "finally", "meanwhile", "soon", "one", "every", "each", "yet", "so", "now", "here",
    "still", "later", "once", "if", "while", "all", "some", "what", "where", "who", "why", "how",
    "even", "just", "perhaps", "maybe", "today", "tonight", "tomorrow", "yesterday", "inside",
    "outside", "together", "at last", "without", "its", "is", "was", "were", "be", "do",
    "did", "does", "let", "please", "thank", "dear", "hello", "goodbye", "hey", "well", "behind",
    "beyond", "above", "below", "under", "over", "through", "into", "onto", "up", "down", "out",
})


def _is_capitalised(word: str) -> bool:
    return word[:1].isupper() and not word.isupper() or (len(word) == 1 and word.isupper() and word != "I")


_SENTENCES = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)]*\s+|\n+")


def _candidates(text: str) -> list[tuple[str, bool]]:
    """(name, opens a sentence) for every run of capitalised words in `text`."""
    found: list[tuple[str, bool]] = []
    for sentence in _SENTENCES.split(text):
        run: list[str] = []
        run_opens = False
        last_end = 0
        for index, match in enumerate(_WORD.finditer(sentence)):
            word = match.group().strip("'-")
            joined = bool(run) and sentence[last_end:match.start()].strip() == ""
            if word and _is_capitalised(word) and word.lower() not in NOT_NAMES:
                if not joined and run:
                    found.append((" ".join(run), run_opens))
                    run = []
                if not run:
                    run_opens = index == 0
                run.append(word)
            elif run:
                found.append((" ".join(run), run_opens))
                run = []
            last_end = match.end()
        if run:
            found.append((" ".join(run), run_opens))
    return found


def names_in(text: str) -> list[str]:
    """The proper names of `text`, in order of first appearance, each once."""
    candidates = _candidates(text)
    # Inside a sentence every capitalised word is a name; so is a run of two or more that opens one.
    inside = {name for name, opens in candidates if not opens or " " in name}
    inside_words = {word for name in inside for word in name.split()}
    names: list[str] = []
    for name, opens in candidates:
        if opens and name not in inside:
            # "Marco walked in." opens a sentence; it is a name if Marco appears elsewhere mid-sentence.
            kept = [w for w in name.split() if w in inside_words]
            if not kept:
                continue
            name = " ".join(kept)
        if len(name) <= MAX_NAME_CHARS and name not in names:
            names.append(name)
    return names


def merged_cast(cast: Iterable[str], paragraph: str, limit: int = MAX_CAST) -> tuple[str, ...]:
    """The cast after `paragraph`: the known names first (a story's first names are its main
    ones), then the paragraph's new ones, at most `limit`. A name already known as part of a
    longer one ("Elena" in "Elena Rosa") is not added again."""
    known = list(dict.fromkeys(cast))
    words = {word for name in known for word in name.split()}
    for name in names_in(paragraph):
        if len(known) >= limit:
            break
        if name in known or all(word in words for word in name.split()):
            continue
        known.append(name)
        words.update(name.split())
    return tuple(known)


def cast_of(paragraphs: Iterable[str], limit: int = MAX_CAST) -> tuple[str, ...]:
    """The cast of a whole story, paragraph by paragraph."""
    cast: tuple[str, ...] = ()
    for paragraph in paragraphs:
        cast = merged_cast(cast, paragraph, limit)
    return cast
