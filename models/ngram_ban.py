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


def banned_by_ngrams(seq: list[int], n: int, free: frozenset[int] = frozenset()) -> set[int]:
    """Tokens that would complete an n-gram already present in `seq` (empty when n is 0),
    except the `free` ones (see ngram_free_token_ids)."""
    if n <= 0 or len(seq) < n:
        return set()
    prefix = tuple(seq[len(seq) - n + 1:])
    return {seq[i + n - 1] for i in range(len(seq) - n + 1)
            if tuple(seq[i:i + n - 1]) == prefix and seq[i + n - 1] not in free}

