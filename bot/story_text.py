"""What a generation's events have said so far, as one text that only grows: for every front.

Variants are written at the same time, but a version is shown only once every earlier one is
done, so each paragraph reads whole and the text never changes behind what was shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.engine.requests import Event
from bot.paragraph_facts import ParagraphFacts, facts_text


@dataclass(frozen=True)
class TextStyle:
    """How a front marks up the parts around the paragraphs."""

    title: str  # "{title}" is the model's name (/compare)
    note: str  # "{note}" is the engine's note (a model that fell back to the default)
    version: str  # "{number}" is 1-based
    stopped: str
    footer: str  # "{facts}": how a paragraph was written (bot.paragraph_facts)
    sorry: str = "Sorry: {reason}"


DISCORD_STYLE = TextStyle(title="**{title}**", note="*{note}*", version="**Version {number}**",
                          stopped="*(stopped)*", footer="-# {facts}")  # Discord's small text
CONSOLE_STYLE = TextStyle(title="[{title}]", note="({note})", version="--- variant {number} ---",
                          stopped="(stopped)", footer="({facts})")


class StoryText:
    """The title, the note, each variant's paragraph and how it ended, from the events."""

    def __init__(self, variants: int, title: str = "", style: TextStyle = DISCORD_STYLE) -> None:
        self.style = style
        self.title = style.title.format(title=title) if title else ""
        self.note = ""
        self.parts = [""] * variants
        self.done = [False] * variants
        self.ending = ""
        self.footers: list[str] = []  # a small line of facts under each finished paragraph
        self.started = False

    def apply(self, event: Event) -> None:
        if event.kind == "started":
            self.started = True
            self.note = self.style.note.format(note=event.text) if event.text else ""
        elif event.kind == "text":
            self.parts[event.variant] += event.text
        elif event.kind == "variant_done":
            self.done[event.variant] = True
            self.parts[event.variant] = event.text
        elif event.kind == "error":
            self.ending = self.style.sorry.format(reason=event.text)
        elif event.kind == "cancelled":
            self.ending = self.style.stopped

    def fail(self, message: str) -> None:
        self.ending = message

    def show_facts(self, facts: Sequence[ParagraphFacts]) -> None:
        """Put how each paragraph was written under it (under the ending when there is one)."""
        self.footers = [self.style.footer.format(facts=facts_text(f)) for f in facts]

    def text(self) -> str:
        # A version is shown once every earlier one is done, so the text only ever grows.
        chunks = [self.title, self.note]
        many = len(self.parts) > 1
        for index, part in enumerate(self.parts):
            if index and not all(self.done[:index]):
                break
            chunks.append(f"{self.style.version.format(number=index + 1)}\n{part}" if many else part)
            if many and index < len(self.footers):
                chunks.append(self.footers[index])
        chunks.append(self.ending)
        if not many and self.footers:
            chunks.append(self.footers[0])
        return "\n\n".join(chunk for chunk in chunks if chunk.strip())
