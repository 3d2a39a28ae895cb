"""Token ids to text, one token at a time, without decoding the whole output again each time.

The way vLLM's incremental detokenizer does it (vllm/transformers_utils/detokenizer_utils.py,
`detokenize_incrementally`): decode only a short window of the newest tokens twice, once
up to what was already read (`read_offset`) and once up to the end, and keep the difference.
Both decodes start at the same token (`prefix_offset`), so whatever a tokenizer does to the
start of a decode (SentencePiece drops a leading space) cancels out. A piece that ends in a
half character (U+FFFD while the rest of its bytes are still to come) waits for the next token.

Only tokenizers whose text depends on nearby tokens alone can be read this way. A backend says
so with `decode_context_tokens` (the transformers backends do); any other (the word-level LSTM
and Markov vocabularies put quotes by counting all of them) is decoded whole every time, which
for a word list is cheap.
"""

from __future__ import annotations

from collections.abc import Callable

REPLACEMENT = "\ufffd"  # what a decode shows for bytes of a character not complete yet
# vLLM's INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET: tokens of context before the new ones.
DEFAULT_CONTEXT_TOKENS = 5


class IncrementalDetokenizer:
    """The text of a growing list of token ids. After each `push`, `text` is what a decode of
    all ids gives, less a half character at the end (it shows up once complete)."""

    def __init__(self, decode: Callable[[list[int]], str], context_tokens: int | None) -> None:
        self._decode = decode
        self._context = context_tokens  # None: decode everything every time
        self.ids: list[int] = []
        self.text = ""
        self._prefix_offset = 0  # where the window's two decodes start
        self._read_offset = 0  # the ids up to here are in `text`

    def push(self, token: int) -> None:
        """Take one more id and bring `text` up to date."""
        self.ids.append(token)
        if self._context is None:
            self.text = self._decode(self.ids)
            return
        prefix_text = self._decode(self.ids[self._prefix_offset:self._read_offset])
        window_text = self._decode(self.ids[self._prefix_offset:])
        if not window_text.startswith(prefix_text):  # a decode that rewrote earlier text
            self._restart()
        elif len(window_text) > len(prefix_text) and not window_text.endswith(REPLACEMENT):
            self.text += window_text[len(prefix_text):]
            self._advance()

    def _restart(self) -> None:
        full = self._decode(self.ids)
        if full.endswith(REPLACEMENT):
            return  # wait for the character to complete
        self.text = full
        self._advance()

    def _advance(self) -> None:
        self._read_offset = len(self.ids)
        self._prefix_offset = max(0, self._read_offset - (self._context or 0))

    def truncated(self, length: int) -> IncrementalDetokenizer:
        """A detokenizer of the first `length` ids only (a row that rewinds), exactly as if the
        rest had never been pushed."""
        again = IncrementalDetokenizer(self._decode, self._context)
        for token in self.ids[:length]:
            again.push(token)
        return again

    def final_text(self) -> str:
        """The whole text, a half character included, exactly as one decode of every id gives it."""
        return self.text if self._context is None else self._decode(self.ids)
