"""How a topic and a story's history become a prompt, for chat models and plain LMs alike.

A continuation shows a chat model the story as its own earlier answer to the /write request,
then a short request that names the story's cast and ends with the member's direction:

    system    the writer's brief (and the voice)
    user      Write a paragraph about {topic}.
    assistant the story so far, paragraph after paragraph
    user      Write the next paragraph of the story, in which {direction}. Keep the names: ...

Measured with bench.story against three other layouts (docs/benchmarks.md): the story inside a
request that ends with instructions (the old layout: SmolLM2 answered by talking about the story
and retold it), the same request with the topic named again (it retold more), and a memory block
of premise and cast in the system prompt (no better, and it changes as the cast grows). The
story comes first and unchanged from one turn to the next, what varies comes last, so
consecutive turns share their whole story as a token prefix. When the story outgrows the
window, whole paragraphs are dropped from the middle: the opening (the premise) and the latest
ones stay.
"""

from __future__ import annotations

from collections.abc import Callable

SYSTEM_PROMPT = (
    "You are a gifted writer. Answer with one vivid, coherent paragraph of prose, "
    "with no title, no list and no preamble."
)
FIRST_REQUEST = "Write a paragraph about {topic}."
# The voice goes last in the system prompt: what a chat model must keep for every paragraph. The
# topic is named as the thing to keep: a strong voice ("gothic horror") otherwise pulls SmolLM2 off
# it (bench.quality --style, 20 topics: topicality -0.058 with "Write in this style: {style}.").
STYLE = " Your voice for every paragraph: {style}. Whatever the voice, write about the topic you are given."
# A plain LM continues text: the voice is a line above the topic, as a book's blurb would say it.
STYLE_HEADER = "{style}.\n"
NOTE = "[Next: {direction}.]\n\n"  # a plain LM's direction, after the story
OMITTED = "[...]"  # stands for the paragraphs a cut story leaves out of a chat prompt


def window(history: list[str], fits: Callable[[list[str]], bool]) -> tuple[list[str], bool]:
    """(paragraphs to show, whether some were dropped after the opening): all of them if they fit,
    else the opening plus as many of the latest as fit (the middle dropped whole), else the latest
    alone (the caller then cuts it from the left)."""
    if not history or fits(history):
        return history, False
    for latest in range(len(history) - 2, 0, -1):
        kept = [history[0], *history[-latest:]]
        if fits(kept):
            return kept, True
    return history[-1:], False


FIRST_DIRECTION = " In this paragraph: {direction}."
NEXT_REQUEST = "Write the next paragraph of the story."
NEXT_DIRECTED = "Write the next paragraph of the story, in which {direction}."
# The names a story must keep (models.story_cast), in the request: what varies goes last.
CAST_NOTE = " Keep the names: {cast}."


def chat_messages(topic: str, history: list[str], direction: str | None, gap: bool = False,
                  style: str | None = None, cast: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """The messages for a new paragraph on the topic, or for the next paragraph of the story so
    far (see the module docstring; with `gap`, OMITTED after the opening marks dropped
    paragraphs). The system prompt carries the `style` to write in, if any.

    Chat models (SmolLM2-Instruct) follow an instruction far better than they continue text.
    """
    topic = topic.strip().rstrip(".")
    system = SYSTEM_PROMPT + (STYLE.format(style=style.strip().rstrip(".")) if style else "")
    messages = [{"role": "system", "content": system},
                {"role": "user", "content": FIRST_REQUEST.format(topic=topic)}]
    if not history:
        if direction:  # nothing to continue yet: the direction goes with the first request
            messages[1]["content"] += FIRST_DIRECTION.format(direction=direction.strip().rstrip("."))
        return messages
    shown = [p.strip() for p in history]
    if gap:
        shown.insert(1, OMITTED)
    request = NEXT_DIRECTED.format(direction=direction.strip().rstrip(".")) if direction else NEXT_REQUEST
    if cast:
        request += CAST_NOTE.format(cast=", ".join(cast))
    return [*messages, {"role": "assistant", "content": "\n\n".join(shown)},
            {"role": "user", "content": request}]


def continuation_text(topic: str, history: list[str], direction: str | None,
                      style: str | None = None) -> tuple[str, str]:
    """(header, story so far) for a plain LM such as GPT-2, which only continues text.

    The header names the topic (after the `style`, if any) so the model stays on it; the caller
    cuts the story (whole paragraphs first, see `window`), never the header, when the context
    window is short. A direction comes last, as an author's note after the story (KoboldAI's
    way: what a model read last weighs most, and the story before it stays the same from one
    turn to the next).
    """
    header = f"{topic.strip().rstrip('.').capitalize()}.\n\n"
    if style:
        header = STYLE_HEADER.format(style=style.strip().rstrip(".").capitalize()) + header
    story = "\n\n".join(p.strip() for p in history)
    return header, (story + "\n\n" if story else "") + direction_note(direction)


def direction_note(direction: str | None) -> str:
    """A plain LM's direction, the last thing it reads before it writes."""
    return NOTE.format(direction=direction.strip().rstrip(".")) if direction else ""
