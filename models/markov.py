"""A word-level Markov chain backend (order 1-5) with interpolated Kneser-Ney smoothing.

It reads the same corpus, split and word tokenizer as the LSTM (models.lstm), so its
held-out perplexity is directly comparable. Sequences are `<bos> topic <sep> text <eos>`
and only paragraph words and <eos> are counted as targets, so the topic words seed the
context of the first words. Training takes seconds, so `MarkovBackend.load` builds the
chain from the corpus instead of storing counts.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch

from models.base import Prompt, UnsupportedStrategy
from models.dry import sequence_breaker_ids
from models.params import GenerationParams
from models.text.data import CORPUS, SPLIT_SEED, VAL_FRACTION, Example, load_examples, split_examples
from models.text.tokenizer import BOS, PAD, SEP, SPECIALS, Vocab

DEFAULT_CORPUS = CORPUS
DEFAULT_ORDER = 3  # trigrams: on ~150k words, 4- and 5-grams are mostly seen once and add nothing
DEFAULT_VOCAB = 6000  # the LSTM's cap, so both models see the same <unk>s
MAX_ORDER = 5
CONTEXT_WINDOW = 4096  # only the last order-1 words matter; this just bounds prompt history
_CACHE_SIZE = 4096  # next-word distributions kept per chain (one per distinct context)

Context = tuple[int, ...]


class MarkovChain:
    """Interpolated Kneser-Ney n-gram model over a word vocabulary.

    p(w | c) = max(N(c, w) - D, 0) / N(c) + D * T(c) / N(c) * p(w | c[1:]), where N are raw
    counts at the highest order and continuation counts (distinct left neighbours) below it,
    T(c) is the number of distinct words after c, and the recursion ends in a uniform
    distribution over every word that can be written, so no word has zero probability.
    """

    def __init__(self, vocab: Vocab, order: int) -> None:
        if not 1 <= order <= MAX_ORDER:
            raise ValueError(f"order must be in 1..{MAX_ORDER}, got {order}")
        self.vocab, self.order = vocab, order
        # counts[k][context of k words][next word] for k = 0 .. order-1
        self.counts: list[dict[Context, Counter[int]]] = [defaultdict(Counter) for _ in range(order)]
        self.totals: list[dict[Context, tuple[int, int]]] = [{} for _ in range(order)]  # (N(c), T(c))
        self.discounts: list[float] = [0.75] * order
        self.never = vocab.special_ids((PAD, BOS, SEP))  # structure: never the next word
        self.n_writable = len(vocab) - len(self.never)
        self.distribution = lru_cache(maxsize=_CACHE_SIZE)(self._distribution)

    @classmethod
    def train(cls, examples: Sequence[Example], vocab: Vocab, order: int = DEFAULT_ORDER) -> MarkovChain:
        """Count the n-grams whose last word is a paragraph word or <eos>."""
        chain = cls(vocab, order)
        grams: Counter[Context] = Counter()
        for e in examples:
            seq = chain.padded(vocab.example_ids(e.topic, e.text))
            first = seq.index(vocab.sep) + 1
            grams.update(tuple(seq[i - order + 1 : i + 1]) for i in range(first, len(seq)))
        for gram, n in grams.items():
            chain.counts[order - 1][gram[:-1]][gram[-1]] += n
        for k in range(order - 2, -1, -1):  # continuation counts: distinct words before (c, w)
            for gram in {g[-(k + 2) :] for g in grams}:
                chain.counts[k][gram[1:-1]][gram[-1]] += 1
        chain._finish()
        return chain

    def padded(self, ids: list[int]) -> list[int]:
        """Ids with extra <bos> on the left so every word has a full context."""
        return [self.vocab.bos] * (self.order - 1) + ids

    def _finish(self) -> None:
        for k, table in enumerate(self.counts):
            self.totals[k] = {c: (sum(nxt.values()), len(nxt)) for c, nxt in table.items()}
            of = Counter(n for nxt in table.values() for n in nxt.values())
            n1, n2 = of.get(1, 0), of.get(2, 0)
            # Ney's estimate D = n1 / (n1 + 2 n2), kept in a sane range for tiny corpora.
            self.discounts[k] = min(0.95, max(0.05, n1 / (n1 + 2 * n2))) if n1 + n2 else 0.75
        self.distribution.cache_clear()

    def prob(self, context: Sequence[int], word: int) -> float:
        """p(word | the last order-1 words of context)."""
        if word in self.never:
            return 0.0
        p = 1.0 / self.n_writable
        ctx = tuple(context[len(context) - self.order + 1 :]) if self.order > 1 else ()
        for k in range(len(ctx) + 1):  # from the empty context up to the full one
            c = ctx[len(ctx) - k :]
            if c not in self.totals[k]:
                break  # a longer context containing an unseen one is unseen too
            total, types = self.totals[k][c]
            d = self.discounts[k]
            p = max(self.counts[k][c].get(word, 0) - d, 0.0) / total + d * types / total * p
        return p

    def _distribution(self, ctx: Context) -> torch.Tensor:
        """p(. | ctx) over the vocabulary, (V,) float64; ctx has exactly order-1 words."""
        p = torch.full((len(self.vocab),), 1.0 / self.n_writable, dtype=torch.float64)
        p[self.never] = 0.0
        for k in range(len(ctx) + 1):
            c = ctx[len(ctx) - k :]
            if c not in self.totals[k]:
                break
            total, types = self.totals[k][c]
            d = self.discounts[k]
            nxt = self.counts[k][c]
            ids = torch.tensor(list(nxt.keys()), dtype=torch.long)
            n = torch.tensor(list(nxt.values()), dtype=torch.float64)
            p = p * (d * types / total)
            p[ids] += (n - d).clamp(min=0) / total
        return p

    def context_of(self, ids: Sequence[int]) -> Context:
        """The last order-1 ids, padded with <bos> on the left."""
        if self.order == 1:
            return ()
        return tuple(self.padded(list(ids))[-(self.order - 1) :])

    def nll(self, examples: Sequence[Example | str]) -> tuple[float, int]:
        """Summed negative log-likelihood (nats) of paragraph words + <eos>, and their count.
        A bare string is a paragraph with an empty topic."""
        total, count = 0.0, 0
        for e in examples:
            e = e if isinstance(e, Example) else Example("", e)
            seq = self.padded(self.vocab.example_ids(e.topic, e.text))
            for i in range(seq.index(self.vocab.sep) + 1, len(seq)):
                total -= math.log(self.prob(seq[max(0, i - self.order + 1) : i], seq[i]))
                count += 1
        return total, count

    def perplexity(self, examples: Sequence[Example | str]) -> float:
        """exp(mean NLL per word); always finite thanks to the uniform floor."""
        total, count = self.nll(examples)
        return math.exp(total / max(1, count))


class MarkovBackend:
    """A MarkovChain driven step by step; see models.base.StepModel. The batch state is
    each row's last order-1 ids."""

    name = "markov"

    def __init__(self, chain: MarkovChain) -> None:
        self.chain = chain
        self.vocab = chain.vocab
        self.vocab_size = len(chain.vocab)
        self.eos_token_ids = frozenset({chain.vocab.eos})
        self.ngram_free_tokens: frozenset[int] = frozenset()  # every token is a whole word
        self.sequence_breaker_tokens = sequence_breaker_ids(chain.vocab.itos, range(len(SPECIALS)))
        self.context_window = CONTEXT_WINDOW
        self.device = torch.device("cpu")
        self._mask = torch.zeros(self.vocab_size)
        self._mask[self.vocab.special_ids()] = float("-inf")  # <unk> is likely but never text

    @classmethod
    def from_corpus(
        cls,
        corpus: Sequence[Path | str] | Path | str = DEFAULT_CORPUS,
        order: int = DEFAULT_ORDER,
        vocab_size: int = DEFAULT_VOCAB,
        split_seed: int = SPLIT_SEED,
    ) -> MarkovBackend:
        """Build the chain from the training split of a corpus (.jsonl or plain text)."""
        paths = [corpus] if isinstance(corpus, (str, Path)) else list(corpus)
        train, _ = split_examples(load_examples(paths), VAL_FRACTION, split_seed)
        vocab = Vocab.build([e.text for e in train] + [e.topic for e in train], vocab_size)
        return cls(MarkovChain.train(train, vocab, order))

    load = from_corpus  # the name the other backends use

    def encode_prompt(self, prompt: Prompt, max_new_tokens: int) -> list[int]:
        return self.vocab.prompt_ids(prompt, max(4, self.context_window - max_new_tokens))

    def decode_text(self, ids: list[int]) -> str:
        return self.vocab.decode(ids)

    def name_token_ids(self, name: str) -> list[list[int]]:
        return self.vocab.name_token_ids(name)

    def new_batch(self) -> list[Context]:
        return []

    def prefill(self, batch: list[Context], prompts: list[list[int]]) -> torch.Tensor:
        rows = [self.chain.context_of(p) for p in prompts]
        batch.extend(rows)
        return self._logits(rows)

    def decode(self, batch: list[Context], tokens: torch.Tensor) -> torch.Tensor:
        if tokens.shape[0] != len(batch):
            raise ValueError(f"decode got {tokens.shape[0]} tokens for a batch of {len(batch)} rows")
        for row, token in enumerate(tokens.tolist()):
            batch[row] = self.chain.context_of([*batch[row], int(token)])
        return self._logits(batch)

    def rewind(self, batch: list[Context], row: int, kept: list[int], drop: int) -> None:
        """The row's context as it was after `kept` (a rewind past a banned phrase)."""
        batch[row] = self.chain.context_of(kept)

    def keep(self, batch: list[Context], rows: list[int]) -> None:
        batch[:] = [batch[r] for r in rows]

    def beam_search(self, prompt_ids: list[int], params: GenerationParams) -> list[int]:
        raise UnsupportedStrategy(
            "Beam search isn't available for the markov model: it would just pick the most common "
            "word sequence every time. Use greedy or a sampling strategy, or pick the lstm model."
        )

    def _logits(self, rows: Sequence[Context]) -> torch.Tensor:
        if not rows:
            return torch.zeros(0, self.vocab_size)
        probs = torch.stack([self.chain.distribution(r) for r in rows])  # (B, V) float64
        return probs.log().float() + self._mask  # log 0 = -inf on structure tokens
