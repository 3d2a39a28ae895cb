"""The prompt of a remote request: the same chat messages and plain-LM text as in-process models.

The bot holds no tokenizer for a remote model, so the story is fitted to the server's window
by an estimate of characters per token (generous: a story cut a little early beats a request
the server refuses); whole paragraphs go from the middle first, as for every backend.
"""

from __future__ import annotations

from typing import Any

from bot.engine.remote.spec import RemoteModel
from models.base import Prompt
from models.prompts import chat_messages, continuation_text, window

CHARS_PER_TOKEN = 3  # English is about 4 per token; 3 leaves room for other scripts and the template
TEMPLATE_TOKENS = 64  # the chat template's own tokens, at most


def prompt_fields(model: RemoteModel, prompt: Prompt, max_new_tokens: int) -> dict[str, Any]:
    """`messages` for a chat API, `prompt` for a completion API, fitted to the model's window."""
    room = max(64, (model.context_tokens - max_new_tokens - TEMPLATE_TOKENS) * CHARS_PER_TOKEN)
    if model.api == "chat":
        def messages_of(history: list[str], gap: bool = False) -> list[dict[str, str]]:
            return chat_messages(prompt.topic, history, prompt.direction, gap, prompt.style, prompt.cast)

        kept, gap = window(prompt.history, lambda history: _length(messages_of(history, True)) <= room)
        messages = messages_of(kept, gap)
        if _length(messages) > room:  # one paragraph longer than the window: keep its end
            over = _length(messages) - room
            messages = messages_of([kept[-1][over:]] if kept else [])
        return {"messages": messages}
    header, story = continuation_text(prompt.topic, prompt.history, prompt.direction, prompt.style)
    return {"prompt": header + story[-max(0, room - len(header)):] if story else header}


def _length(messages: list[dict[str, str]]) -> int:
    return sum(len(message["content"]) for message in messages)
