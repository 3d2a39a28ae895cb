"""Text once shown never vanishes, and a paragraph is never just the topic echoed back (issue 11,
point 2). The scripted model writes a fixed text (the echoed topic, say) and a blank line before
whatever the tiny GPT-2 writes next, as SmolLM2 did."""

from __future__ import annotations

from bot.engine.paragraph_end import is_topic_echo
from bot.limits import WRITING_MARKER
from tests.conftest import DISCORD_TEST_SETTINGS, DiscordRig

HOSTILE_TOPIC = "@everyone <@&123> **unclosed bold"
# Long enough that several edits show text before the minimum is reached.
PARAGRAPHS = {**DISCORD_TEST_SETTINGS, "stop_at_paragraph": True, "min_new_tokens": 10, "max_new_tokens": 16}


async def streamed_paragraph(rig: DiscordRig, topic: str, prefix: str) -> tuple[str, list[str]]:
    """The final content of a /write and the content of every payload sent for its message."""
    async with rig.running(prefix=prefix, step_delay_s=0.05, settings=PARAGRAPHS):
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "write", {"topic": topic})
        final = await rig.final(ix)
    shown = [rig.message_of(c).get("content") for c in rig.payloads()
             if c.path.endswith("/messages/@original") and rig.message_of(c).get("content")]
    return final.content, shown


def assert_nothing_vanished(final: str, shown: list[str]) -> None:
    streamed = [text.removesuffix(WRITING_MARKER) for text in shown if text.endswith(WRITING_MARKER)]
    assert streamed, "no edit streamed the text"
    for text in streamed:
        assert final.startswith(text.rstrip()), f"shown text vanished: {text!r} -> {final!r}"


async def test_an_echoed_topic_and_a_blank_line_do_not_end_the_paragraph(rig: DiscordRig) -> None:
    final, shown = await streamed_paragraph(rig, HOSTILE_TOPIC, HOSTILE_TOPIC + "\n\n")
    assert_nothing_vanished(final, shown)
    paragraph = final.split("\n\n", 1)
    assert len(paragraph) == 2 and paragraph[1].strip(), f"only the topic came back: {final!r}"
    assert not is_topic_echo(final, HOSTILE_TOPIC)


async def test_a_blank_line_shown_before_the_minimum_is_not_a_cut(rig: DiscordRig) -> None:
    final, shown = await streamed_paragraph(rig, "a harbour", "The boats came in at dusk.\n\n")
    assert_nothing_vanished(final, shown)
    assert final.startswith("The boats came in at dusk.\n\n") and len(final) > len("The boats came in at dusk.")
