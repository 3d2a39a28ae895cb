"""StoryText, as every front reads a generation: variants written at once still read whole."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bot.console import Console
from bot.engine.requests import Event
from bot.paragraph_facts import ParagraphFacts
from bot.story_text import CONSOLE_STYLE, DISCORD_STYLE, StoryText
from models.params import GenerationParams

# Three variants whose pieces arrive interleaved, as the engine's batch writes them.
INTERLEAVED = [
    Event("started"),
    Event("text", "Alpha one", variant=0), Event("text", "Beta one", variant=1),
    Event("text", "Gamma one", variant=2), Event("text", " alpha two.", variant=0),
    Event("text", " beta two.", variant=1), Event("variant_done", "Beta one beta two.", variant=1),
    Event("variant_done", "Alpha one alpha two.", variant=0),
    Event("text", " gamma two.", variant=2), Event("variant_done", "Gamma one gamma two.", variant=2),
    Event("done", "Alpha one alpha two."),
]


@dataclass
class ScriptedGeneration:
    """What the console reads of a Generation: its settings and its events."""

    events_to_send: list[Event]
    params: GenerationParams
    variant_facts: tuple[Any, ...] = ()  # how each variant was written (printed under the text)

    async def events(self) -> AsyncIterator[Event]:
        for event in self.events_to_send:
            yield event


def test_each_version_gets_its_own_facts_under_it_and_one_paragraph_gets_them_last() -> None:
    many = StoryText(2, style=DISCORD_STYLE)
    for event in (Event("variant_done", "One.", variant=0), Event("variant_done", "Two.", variant=1)):
        many.apply(event)
    many.show_facts([ParagraphFacts("m", "sample", seed=7), ParagraphFacts("m", "sample", seed=8, cut_at=9)])
    assert many.text() == ("**Version 1**\nOne.\n\n-# m · sample · seed 7\n\n"
                           "**Version 2**\nTwo.\n\n-# m · sample · seed 8 · cut at 9 tokens")
    one = StoryText(1, style=DISCORD_STYLE)
    one.apply(Event("text", "Half"))
    one.apply(Event("cancelled"))
    one.show_facts([ParagraphFacts("m", "greedy", stopped=True)])
    assert one.text().startswith("Half\n\n*(stopped)*\n\n-# m · greedy")


def test_the_text_only_grows_while_interleaved_variants_arrive() -> None:
    story = StoryText(3, style=DISCORD_STYLE)
    shown = ""
    for event in INTERLEAVED:
        story.apply(event)
        assert story.text().startswith(shown)
        shown = story.text()
    assert shown == ("**Version 1**\nAlpha one alpha two.\n\n**Version 2**\nBeta one beta two.\n\n"
                     "**Version 3**\nGamma one gamma two.")


async def test_the_console_prints_interleaved_variants_one_after_another() -> None:
    out = io.StringIO()
    console = Console(service=None, out=out)  # type: ignore[arg-type]  # stream() needs no service
    await console.stream(ScriptedGeneration(INTERLEAVED, GenerationParams(variants=3)))  # type: ignore[arg-type]
    assert out.getvalue() == ("--- variant 1 ---\nAlpha one alpha two.\n\n--- variant 2 ---\nBeta one beta two."
                              "\n\n--- variant 3 ---\nGamma one gamma two.\n")


def test_a_stopped_paragraph_ends_with_the_front_s_own_words() -> None:
    story = StoryText(1, title="lstm", style=CONSOLE_STYLE)
    for event in (Event("started", "model x is not available"), Event("text", "Half a"), Event("cancelled")):
        story.apply(event)
    assert story.text() == "[lstm]\n\n(model x is not available)\n\nHalf a\n\n(stopped)"
