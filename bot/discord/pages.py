"""Text for Discord: pages that fit a message without breaking markdown, thread names, exports.

Pure functions and one small class; nothing here talks to Discord, so all of it is cheap to test.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from bot.formatting import defuse_mentions
from bot.limits import MESSAGE_LIMIT, THREAD_NAME_CHARS, WRITING_MARKER
from bot.paragraph_facts import ParagraphFacts, facts_text
from bot.storage import Story, Turn

FENCE = "```"
_CLOSE_FENCE = "\n" + FENCE
# A page shorter than this share of the limit is a poor cut; look for a later boundary first.
MIN_PAGE_SHARE = 3
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]*_]*\s")
_NEWLINE = re.compile(r"\n")
_SPACE = re.compile(r"\s")


def inside_fence(text: str, position: int) -> bool:
    """Whether `position` falls inside a ``` code block of `text`."""
    return text.count(FENCE, 0, position) % 2 == 1


def _fence_language(text: str, position: int) -> str:
    """The language tag of the code block open at `position` (``` python -> "python")."""
    start = text.rfind(FENCE, 0, position) + len(FENCE)
    line_end = text.find("\n", start)
    return text[start:line_end if line_end >= 0 else position].strip()


def _last_cut(text: str, pattern: re.Pattern[str], low: int, high: int, fenced: bool) -> int | None:
    """The last end-of-match position in [low, high] that is (or is not) inside a code block."""
    best = None
    for match in pattern.finditer(text, 0, high + 1):
        cut = match.end() - 1 if pattern is _SENTENCE_END else match.start()  # at the whitespace
        if low <= cut <= high and inside_fence(text, cut) == fenced:
            best = cut
    return best


def split_once(text: str, limit: int) -> tuple[str, int, str]:
    """Cut a head that fits in `limit` characters off `text`, at the best boundary.

    Preference: a paragraph break, a sentence end, a line break, a space (all outside code
    blocks), then a line break inside a code block (the block is closed and reopened), then a
    hard cut. Returns (head, consumed, reopen): the page to post, how many characters of `text`
    it covers (whitespace at the cut included), and what the next page must start with.
    """
    room = limit - len(_CLOSE_FENCE)  # a cut inside a block needs room to close it
    low = max(1, room // MIN_PAGE_SHARE)
    for pattern in (_PARAGRAPH, _SENTENCE_END, _NEWLINE, _SPACE):
        cut = _last_cut(text, pattern, low, room, fenced=False)
        if cut is not None:
            rest = len(text[cut:]) - len(text[cut:].lstrip())
            return text[:cut].rstrip(), cut + rest, ""
    cut = _last_cut(text, _NEWLINE, low, room, fenced=True) or room
    if not inside_fence(text, cut):
        return text[:cut], cut, ""
    reopen = FENCE + _fence_language(text, cut) + "\n"
    consumed = cut + 1 if text[cut:cut + 1] == "\n" else cut
    return text[:cut].rstrip("\n") + _CLOSE_FENCE, consumed, reopen


def split_pages(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """All of `text` as pages of at most `limit` characters (see `split_once`)."""
    pages = []
    while len(text) > limit:
        head, consumed, reopen = split_once(text, limit)
        pages.append(head)
        text = reopen + text[consumed:]
    return [*pages, text]


class PageLayout:
    """Lays out a text that only grows (a paragraph being written) as mention-safe pages.

    Pages before the last are final once cut: they are already posted, so later text never
    moves them. The last page leaves room for the writing marker.
    """

    def __init__(self, limit: int = MESSAGE_LIMIT, reserve: int = len(WRITING_MARKER)) -> None:
        self.budget = limit - reserve
        self._sealed: list[str] = []
        self._consumed = 0  # characters of the raw text that sealed pages cover
        self._carry = ""  # a reopened code fence the tail page starts with

    def pages(self, raw: str) -> list[str]:
        """The sealed pages and then the tail (which may be empty), all with mentions defused."""
        while True:
            tail = self._carry + raw[self._consumed:]
            safe_tail = defuse_mentions(tail)
            if len(safe_tail) <= self.budget:
                return [*self._sealed, safe_tail]
            head, consumed, reopen = self._cut(tail)
            self._sealed.append(head)
            self._consumed += consumed - len(self._carry)
            self._carry = reopen

    def _cut(self, tail: str) -> tuple[str, int, str]:
        # Defusing adds a character per mention: shrink the cut until the safe head fits.
        limit = self.budget
        while True:
            head, consumed, reopen = split_once(tail, limit)
            safe_head = defuse_mentions(head)
            if len(safe_head) <= self.budget:
                return safe_head, consumed, reopen
            limit -= len(safe_head) - self.budget


# What a title drops: mentions (users, roles, channels, @everyone/@here), custom emoji, link
# targets, and markdown's marks (bold, italics, strike, spoilers, code, quotes, headings).
_TITLE_NOISE = re.compile(r"<(?:@[!&]?|#)\d+>|<a?:\w+:\d+>|@(?:everyone|here)\b|\]\([^)]*\)|[*_~`|>#\\\[\]]")


def thread_name(topic: str) -> str:
    """A clean thread title from a story's topic: no mention syntax or markdown, cut at a word
    when too long for Discord (THREAD_NAME_CHARS, under its 100)."""
    name = " ".join(_TITLE_NOISE.sub(" ", topic).split()).strip(" -:") or "A story"
    if len(name) <= THREAD_NAME_CHARS:
        return name
    cut = name.rfind(" ", 0, THREAD_NAME_CHARS - 1)
    return name[:cut if cut > THREAD_NAME_CHARS // 2 else THREAD_NAME_CHARS - 1].rstrip() + "…"


def story_markdown(story: Story, turns: Sequence[Turn]) -> str:
    """The whole story as a Markdown document: members' own lines are quoted."""
    started = time.strftime("%Y-%m-%d", time.gmtime(story.created_at))
    lines = [f"# {story.topic}", "", f"*Written with {story.model}, started {started}.*", ""]
    for turn in turns:
        if turn.kind == "user":
            lines += ["> " + line for line in turn.text.splitlines() or [""]]
        else:
            if turn.direction:
                lines += [f"*({turn.direction})*", ""]
            lines.append(turn.text)
            facts = ParagraphFacts.from_dict(turn.facts)
            if facts is not None:
                lines += ["", f"*{facts_text(facts)}*"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def export_filename(story: Story) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", story.topic.lower()).strip("-")[:40] or "story"
    return f"story-{story.id}-{slug}.md"
