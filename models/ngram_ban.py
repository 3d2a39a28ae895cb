"""The no-repeat n-gram ban, applied only to tokens that start a word.

Banning every repeated token n-gram (transformers' NoRepeatNGramLogitsProcessor) also bans the
second half of a word split into pieces: once "lighthouse" (light + house) was written, "light"
can never again be followed by "house", and the model writes "lighthongessholder". So the ban
only forbids tokens that begin a new word; pieces inside a word and punctuation stay free.
"""

from __future__ import annotations

from typing import Any

# How tokenizers spell a leading space or newline: byte-level BPE (GPT-2, Llama 3, SmolLM2)
# maps " " to "Ġ", "\n" to "Ċ" and "\t" to "ĉ"; SentencePiece writes "▁".
WORD_START_MARKS = ("Ġ", "Ċ", "ĉ", "▁", " ", "\n", "\t")


def ngram_free_token_ids(tokenizer: Any) -> frozenset[int]:
    """Ids of the tokens that do not start a word (word pieces, punctuation, digits).

    Special tokens (end of text, chat markers) are not free: the ban treats them as before.
    """
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return frozenset(
        token_id for token_id, piece in enumerate(pieces)
        if piece and token_id not in special and not piece.startswith(WORD_START_MARKS)
    )


class NgramBan:
    """The ban over one sequence, kept incrementally: each pushed token costs O(1), and the
    banned tokens after it are one lookup. The one implementation of the ban: rows of the
    engine keep one as they write; beam paths, whose hypotheses fork, build one per sequence."""

    def __init__(self, n: int, free: frozenset[int] = frozenset()) -> None:
        self.n = n
        self.free = free
        self._seq: list[int] = []
        self._followers: dict[tuple[int, ...], set[int]] = {}  # (n-1)-token prefix -> tokens after it

    @classmethod
    def over(cls, seq: list[int], n: int, free: frozenset[int] = frozenset()) -> NgramBan:
        """The ban after `seq` has been written."""
        ban = cls(n, free)
        for token in seq:
            ban.push(token)
        return ban

    def push(self, token: int) -> None:
        """Record the next token of the sequence."""
        self._seq.append(token)
        n = self.n
        if n > 0 and len(self._seq) >= n and token not in self.free:
            self._followers.setdefault(tuple(self._seq[-n:-1]), set()).add(token)

    def banned(self) -> set[int]:
        """Tokens that would complete an n-gram already in the sequence (empty when n is 0)."""
        n = self.n
        if n <= 0 or len(self._seq) < n - 1:
            return set()
        prefix = tuple(self._seq[len(self._seq) - (n - 1):]) if n > 1 else ()
        return set(self._followers.get(prefix, ()))


def banned_by_ngrams(seq: list[int], n: int, free: frozenset[int] = frozenset()) -> set[int]:
    """Tokens that would complete an n-gram already present in `seq` (empty when n is 0),
    except the `free` ones (see ngram_free_token_ids)."""
    return NgramBan.over(seq, n, free).banned()
