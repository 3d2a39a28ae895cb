"""What a generation's events have said so far, as one text that only grows: for every front.

Variants are written at the same time, but a version is shown only once every earlier one is
done, so each paragraph reads whole and the text never changes behind what was shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.engine.requests import Event


@dataclass(frozen=True)
class TextStyle:
    """How a front marks up the parts around the paragraphs."""

    title: str  # "{title}" is the model's name (/compare)
    note: str  # "{note}" is the engine's note (a model that fell back to the default)
    version: str  # "{number}" is 1-based
    stopped: str
    sorry: str = "Sorry: {reason}"


DISCORD_STYLE = TextStyle(title="**{title}**", note="*{note}*", version="**Version {number}**",
                          stopped="*(stopped)*")
CONSOLE_STYLE = TextStyle(title="[{title}]", note="({note})", version="--- variant {number} ---",
                          stopped="(stopped)")


class StoryText:
    """The title, the note, each variant's paragraph and how it ended, from the events."""

    def __init__(self, variants: int, title: str = "", style: TextStyle = DISCORD_STYLE) -> None:
        self.style = style
        self.title = style.title.format(title=title) if title else ""
        self.note = ""
        self.parts = [""] * variants
        self.done = [False] * variants
        self.ending = ""
        self.footer = ""  # a small line of facts under the finished paragraph
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

    def text(self) -> str:
        # A version is shown once every earlier one is done, so the text only ever grows.
        chunks = [self.title, self.note]
        many = len(self.parts) > 1
        for index, part in enumerate(self.parts):
            if index and not all(self.done[:index]):
                break
            chunks.append(f"{self.style.version.format(number=index + 1)}\n{part}" if many else part)
        chunks += [self.ending, self.footer]
        return "\n\n".join(chunk for chunk in chunks if chunk.strip())
