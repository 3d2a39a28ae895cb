"""How a topic and a story's history become a prompt, for chat models and plain LMs alike."""

from __future__ import annotations

SYSTEM_PROMPT = (
    "You are a gifted writer. Answer with one vivid, coherent paragraph of prose, "
    "with no title, no list and no preamble."
)
FIRST_REQUEST = "Write a paragraph about {topic}."
NEXT_REQUEST = "Continue the story with the next paragraph."
DIRECTION = " In this paragraph: {direction}."


def chat_messages(topic: str, history: list[str], direction: str | None) -> list[dict[str, str]]:
    """A conversation where each earlier paragraph is the assistant's answer to a request.

    Chat models (SmolLM2-Instruct) follow an instruction far better than they continue text.
    """
    messages = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": FIRST_REQUEST.format(topic=topic.strip())}]
    for paragraph in history:
        messages.append({"role": "assistant", "content": paragraph})
        messages.append({"role": "user", "content": NEXT_REQUEST})
    if direction:
        messages[-1]["content"] += DIRECTION.format(direction=direction.strip().rstrip("."))
    return messages


def continuation_text(topic: str, history: list[str], direction: str | None) -> tuple[str, str]:
    """(header, story so far) for a plain LM such as GPT-2, which only continues text.

    The header names the topic so the model stays on it; the caller cuts the story from the
    left, never the header, when the context window is short.
    """
    header = f"{topic.strip().rstrip('.').capitalize()}.\n\n"
    if direction:
        header = f"{topic.strip().rstrip('.').capitalize()}. Next: {direction.strip().rstrip('.')}.\n\n"
    story = "\n\n".join(p.strip() for p in history)
    return header, (story + "\n\n" if story else "")
