"""Word-level tokenizer shared by the LSTM and the Markov chain.

Words keep their case; punctuation and English clitics ('s, n't style suffixes such as 't,
're, 'll) are tokens of their own so the vocabulary stays small. A sequence for training is
`<bos> topic words <sep> paragraph words <eos>`; a prompt stops after `<sep>` (plus any
history and direction words) and the model writes the rest.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from models.base import Prompt
from models.prompts import window

PAD, UNK, BOS, SEP, EOS = "<pad>", "<unk>", "<bos>", "<sep>", "<eos>"
SPECIALS: tuple[str, ...] = (PAD, UNK, BOS, SEP, EOS)  # ids 0..4 in every vocabulary
NEVER_GENERATED: tuple[str, ...] = (PAD, UNK, BOS, SEP)
"""Tokens a backend masks to -inf: they are structure or "some rare word", never text."""

_TOKEN = re.compile(
    r"\w+(?=n't\b)|n't\b"  # don't -> do n't
    r"|'(?:s|t|re|ll|ve|d|m)\b"  # it's -> it 's, they're -> they 're
    r"|\w+(?:[-.]\w+)*"  # words, hyphenated compounds, numbers such as 3.5
    r"|[^\w\s]",  # every other symbol on its own
    re.IGNORECASE,
)
_NO_SPACE_BEFORE = set(".,;:!?)]}%…") | {"n't", "'s", "'t", "'re", "'ll", "'ve", "'d", "'m"}
_NO_SPACE_AFTER = set("([{$#")
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "—": " — "})


def split_words(text: str) -> list[str]:
    """Word tokens of `text`; curly quotes become straight ones."""
    return _TOKEN.findall(text.translate(_QUOTES))


def detokenize(words: Sequence[str]) -> str:
    """Join word tokens with English spacing: none before punctuation or clitics, quotes hug
    what they enclose (alternating open and close)."""
    out: list[str] = []
    glue_next = True  # no space before the very first word
    open_quote = False
    for word in words:
        if word == '"':
            if open_quote:
                out.append(word)
                glue_next = False
            else:
                out.append(word if glue_next else " " + word)
                glue_next = True
            open_quote = not open_quote
            continue
        glue = glue_next or word in _NO_SPACE_BEFORE or word.lower() in _NO_SPACE_BEFORE
        out.append(word if glue else " " + word)
        glue_next = word in _NO_SPACE_AFTER
    return "".join(out)


class Vocab:
    """A capped word vocabulary: specials first, then words by descending frequency."""

    def __init__(self, tokens: Sequence[str]) -> None:
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with {SPECIALS}, got {tuple(tokens[:5])}")
        self.itos: list[str] = list(tokens)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        self.pad, self.unk, self.bos, self.sep, self.eos = (self.stoi[s] for s in SPECIALS)

    @classmethod
    def build(cls, texts: Iterable[str], max_size: int, min_count: int = 2) -> Vocab:
        """The `max_size` most frequent words (seen at least `min_count` times) plus specials."""
        counts = Counter(word for text in texts for word in split_words(text))
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(list(SPECIALS) + ranked[: max(0, max_size - len(SPECIALS))])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, words: Iterable[str]) -> list[int]:
        return [self.stoi.get(w, self.unk) for w in words]

    def ids(self, text: str) -> list[int]:
        """Token ids of a text (unknown words become <unk>)."""
        return self.encode(split_words(text))

    def name_token_ids(self, name: str) -> list[list[int]]:
        """A name's ids, whole and word by word (for models.name_guard); unknown words have none."""
        sequences = [self.ids(name), *(self.ids(word) for word in name.split())]
        return [seq for seq in sequences if seq and self.unk not in seq]

    def special_ids(self, names: Iterable[str] = NEVER_GENERATED) -> list[int]:
        return [self.stoi[n] for n in names]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ids, skipping specials."""
        return detokenize([self.itos[i] for i in ids if i >= len(SPECIALS)])

    def example_ids(self, topic: str, text: str) -> list[int]:
        """`<bos> topic <sep> text <eos>` as ids."""
        return [self.bos, *self.ids(topic), self.sep, *self.ids(text), self.eos]

    def prompt_ids(self, prompt: Prompt, budget: int) -> list[int]:
        """`<bos> topic <sep>` + the last history words + direction words, at most `budget` ids.

        History loses whole paragraphs from its middle, then words from the left; topic and direction are kept (the topic is cut to half
        the budget so a pasted essay as a topic cannot crowd out everything else)."""
        topic = self.ids(prompt.topic)[: max(1, budget // 2)]
        direction = self.ids(prompt.direction) if prompt.direction else []
        head = [self.bos, *topic, self.sep]
        direction = direction[: max(0, budget - len(head))]
        room = max(0, budget - len(head) - len(direction))
        # Whole paragraphs first (the opening and the latest ones stay), then words from the left.
        kept, _ = window(list(prompt.history), lambda paragraphs: len(self.ids(" ".join(paragraphs))) <= room)
        history = self.ids(" ".join(kept))
        return head + (history[-room:] if room else []) + direction

    def topic_of(self, ids: Sequence[int]) -> list[int]:
        """The topic ids of a prompt or example: between <bos> and the first <sep>."""
        start = 1 if ids and ids[0] == self.bos else 0
        end = ids.index(self.sep) if self.sep in ids else len(ids)
        return list(ids[start:end])
