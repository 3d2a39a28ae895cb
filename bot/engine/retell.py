"""No retelling: a continuation's first sentence is held until complete, and written again when
it retells an earlier paragraph or opens the way one opened.

A small model asked for the next paragraph often writes the opening again in other words ("In
the heart of a sprawling metropolis..." eleven times). The first sentence says whether it does:
it is compared (MiniLM, models.sentence_vectors) with every earlier paragraph, and its first
words with theirs. A retelling sends the row back to its first token (bot/engine/rewind.py, the
token forbidden there) for another try, up to MAX_TRIES; then the least retelling try is written
again token by token. Members wait at most a sentence, and never see a try that was dropped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

MAX_TRIES = 3  # first sentences written per continuation, at most
OPENING_WORDS = 4  # a continuation whose first four words open an earlier paragraph retells it
RETELL_SIMILARITY = 0.7  # first sentence against an earlier paragraph, MiniLM cosine (bench.story)
MAX_KEPT_VECTORS = 4096  # paragraphs whose vectors are kept between turns (1.5 KB each)
MIN_SENTENCE_WORDS = 4
MAX_HELD_TOKENS = 40  # a first sentence longer than this is judged as far as it goes  # "Yes." is no sentence to judge by
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)]*(\s|$)|\n")

log = logging.getLogger(__name__)
Embed = Callable[[list[str]], torch.Tensor]


def opening(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z0-9']+", text.lower())[:OPENING_WORDS])


def first_sentence_end(text: str, ended: bool = False) -> int | None:
    """Where the text's first sentence ends, once it is complete (all of it when `ended`)."""
    for match in _SENTENCE_END.finditer(text):
        if len(text[:match.start()].split()) >= MIN_SENTENCE_WORDS:
            return match.start() + 1
    return len(text) if ended and text.strip() else None


@dataclass
class RetellGuard:
    """One continuation's check of its first sentence against the story's earlier paragraphs."""

    earlier: torch.Tensor  # (P, D) unit vectors of the earlier paragraphs
    openings: frozenset[tuple[str, ...]]
    embed: Embed
    threshold: float = RETELL_SIMILARITY
    tries: list[tuple[float, list[int]]] = field(default_factory=list)  # (score, tokens) of each try
    settled: bool = False  # the first sentence is accepted: text flows as usual

    def score(self, sentence: str) -> float:
        """How much `sentence` retells: 1 for an earlier paragraph's opening, else the highest
        cosine with an earlier paragraph."""
        if opening(sentence) in self.openings:
            return 1.0
        vector = self.embed([sentence])[0]
        return float((self.earlier @ vector).max()) if len(self.earlier) else 0.0

    def judge(self, sentence: str, tokens: Sequence[int]) -> list[int] | None:
        """None to write this sentence again; else the tokens to keep (this try's, or after the
        last try the least retelling one's, which the row writes again)."""
        score = self.score(sentence)
        self.tries.append((score, list(tokens)))
        if score < self.threshold:
            self.settled = True
            return list(tokens)
        if len(self.tries) < MAX_TRIES:
            return None
        self.settled = True
        return min(self.tries, key=lambda attempt: attempt[0])[1]


class RetellJudge:
    """Makes each continuation's guard; loads MiniLM the first time one is needed."""

    def __init__(self, embed_factory: Callable[[], Embed] | None = None) -> None:
        self._factory = embed_factory
        self._embed: Embed | None = None
        self._vectors: dict[str, torch.Tensor] = {}  # paragraph -> vector: a story's turns recur
        self._failed = False

    def _embedder(self) -> Embed:
        if self._embed is None:
            if self._factory is None:
                from models.sentence_vectors import SentenceEmbedder

                self._factory = SentenceEmbedder
            self._embed = self._factory()
        return self._embed

    def guard(self, history: Sequence[str]) -> RetellGuard | None:
        """The check for a continuation of `history`; None where the scorer cannot be loaded
        (logged once: the paragraph is written unchecked)."""
        if self._failed:
            return None
        try:
            embed = self._embedder()
        except Exception as error:  # noqa: BLE001 - a missing package must not fail the paragraph
            self._failed = True
            log.warning("the retelling check is off: its scorer could not be loaded (%s)", error)
            return None
        missing = [p for p in dict.fromkeys(history) if p not in self._vectors]
        if missing:
            self._vectors.update(zip(missing, embed(missing), strict=True))
        earlier = torch.stack([self._vectors[p] for p in history]) if history else torch.zeros(0, 1)
        if len(self._vectors) > MAX_KEPT_VECTORS:  # bounded: the oldest stories' paragraphs go first
            for key in list(self._vectors)[: MAX_KEPT_VECTORS // 4]:
                del self._vectors[key]
        return RetellGuard(earlier, frozenset(opening(p) for p in history), embed)
