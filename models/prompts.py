"""How a topic and a story's history become a prompt, for chat models and plain LMs alike.

A continuation shows a chat model the story so far as one text in one request, with an
instruction to move it forward. (Showing each earlier paragraph as the answer to the same
request, "Continue the story", taught a small model that the answer is the previous answer:
SmolLM2 wrote the same paragraph again and again.) When the story outgrows the window, whole
paragraphs are dropped from the middle: the opening (the premise) and the latest ones stay.
"""

from __future__ import annotations

from collections.abc import Callable

SYSTEM_PROMPT = (
    "You are a gifted writer. Answer with one vivid, coherent paragraph of prose, "
    "with no title, no list and no preamble."
)
FIRST_REQUEST = "Write a paragraph about {topic}."
STORY_REQUEST = (
    "Here is a story about {topic}, so far:\n\n{story}\n\n"
    "Write the next paragraph of this story. Move the story forward with new events, actions or "
    "discoveries that follow from the last paragraph. Do not repeat or retell what already happened. "
    # Named again at the end: a small model follows what it read last, and a long story drifts.
    "Keep the story about {topic}."
)
DIRECTION = " In this paragraph: {direction}."
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


NEXT_REQUEST = "Write the next paragraph of the story."
NEXT_DIRECTED = "Write the next paragraph of the story, in which {direction}."
CAST_NOTE = " Keep the names: {cast}."
MEMORY = " The story is about {topic}.{cast}"


def chat_messages(topic: str, history: list[str], direction: str | None, gap: bool = False,
                  style: str | None = None, cast: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """The system prompt (with the `style` to write in, if any) and one request: a new paragraph
    on the topic, or the next paragraph of the story so far (with `gap`, OMITTED after the
    opening marks dropped paragraphs).

    Chat models (SmolLM2-Instruct) follow an instruction far better than they continue text.
    """
    import os
    layout = os.environ.get("STORY_PROMPT", "request")
    topic = topic.strip().rstrip(".")
    system = SYSTEM_PROMPT + (STYLE.format(style=style.strip().rstrip(".")) if style else "")
    shown = [p.strip() for p in history]
    if gap:
        shown.insert(1, OMITTED)
    names = ", ".join(cast)
    if history and layout != "request":
        if layout == "memory":
            system += MEMORY.format(topic=topic, cast=f" Characters: {names}." if names else "")
        last = NEXT_DIRECTED.format(direction=direction.strip().rstrip(".")) if direction else NEXT_REQUEST
        if layout == "answer_cast" and names:
            last += CAST_NOTE.format(cast=names)
        return [{"role": "system", "content": system},
                {"role": "user", "content": FIRST_REQUEST.format(topic=topic)},
                {"role": "assistant", "content": "\n\n".join(shown)},
                {"role": "user", "content": last}]
    if history:
        request = STORY_REQUEST.format(topic=topic, story="\n\n".join(shown))
    else:
        request = FIRST_REQUEST.format(topic=topic)
    if direction:
        request += DIRECTION.format(direction=direction.strip().rstrip("."))
    return [{"role": "system", "content": system}, {"role": "user", "content": request}]


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
