"""Compare the LSTM with Markov chains on the held-out split, and check it stays on topic.

    python -m models.lstm.evaluate --corpus data/corpus.jsonl --checkpoint data/lstm/best.pt

Perplexity counts paragraph words and <eos> given the topic, with the LSTM's vocabulary for
every model, so the figures compare. Topicality: for each held-out topic (never seen in
training), sample a paragraph and measure which fraction of the topic's content words it
uses, against the same measure with every other held-out topic. Results are printed and
merged into metrics.json next to the checkpoint under "comparison" and "topicality".
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from models.base import Prompt, StepModel
from models.lstm.backend import DEFAULT_CHECKPOINT, LSTMBackend
from models.lstm.batches import encode, mean_nll, perplexity
from models.lstm.train import MAX_LEN
from models.markov import MarkovBackend, MarkovChain
from models.text.data import Example, load_examples, split_examples

log = logging.getLogger(__name__)

MARKOV_ORDERS = (1, 2, 3, 4, 5)
SAMPLE_TEMPERATURE = 0.8
SAMPLE_TOP_K = 40
SAMPLE_TOKENS = 120
MIN_TOKENS = 30  # <eos> is held back until then, as the engine's min_new_tokens does
_STOP = set(
    "a an the of in on at to for and or but with by from into about over under as is are was were be "
    "day time way life my your our their his her its this that these those how what why when where who "
    "new old first last good great little big small".split()
)


def content_words(text: str) -> set[str]:
    """Lower-cased words without stop words, crudely singularised (bees -> bee)."""
    words = re.findall(r"[a-z]+", text.lower())
    return {
        w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
        for w in words
        if w not in _STOP and len(w) > 1
    }


def overlap(topic: str, text: str) -> float:
    """Fraction of the topic's content words that the text uses (0 when it has none)."""
    want = content_words(topic)
    return len(want & content_words(text)) / len(want) if want else 0.0


def topicality(topics: Sequence[str], texts: Sequence[str]) -> dict[str, float]:
    """Own-topic word overlap against the mean overlap with every other topic, plus how often
    a paragraph's own topic is (one of) the best-matching topics."""
    n = len(topics)
    scores = [[overlap(t, x) for t in topics] for x in texts]  # scores[text][topic]
    own = sum(scores[i][i] for i in range(n)) / n
    other = sum(scores[i][j] for i in range(n) for j in range(n) if j != i) / (n * (n - 1))
    top1 = sum(scores[i][i] > 0 and scores[i][i] == max(scores[i]) for i in range(n)) / n
    return {
        "own_topic_overlap": round(own, 4),
        "other_topic_overlap": round(other, 4),
        "own_topic_best_match": round(top1, 4),
        "paragraphs": n,
    }


@torch.no_grad()
def sample(
    backend: StepModel, topics: Sequence[str], seed: int, max_new_tokens: int = SAMPLE_TOKENS
) -> list[str]:
    """One sampled paragraph per topic (temperature + top-k, seeded), all rows in one batch."""
    gen = torch.Generator().manual_seed(seed)
    eos = sorted(backend.eos_token_ids)
    batch = backend.new_batch()
    logits = backend.prefill(batch, [backend.encode_prompt(Prompt(t), max_new_tokens) for t in topics])
    out: list[list[int]] = [[] for _ in topics]
    live = list(range(len(topics)))
    for step in range(max_new_tokens):
        logits = logits.float().cpu() / SAMPLE_TEMPERATURE
        if step < MIN_TOKENS:
            logits[:, eos] = float("-inf")
        kth = torch.topk(logits, SAMPLE_TOP_K, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
        tokens = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen).squeeze(1)  # (B,)
        keep = [r for r, t in enumerate(tokens.tolist()) if t not in backend.eos_token_ids]
        for r, t in enumerate(tokens.tolist()):
            if t not in backend.eos_token_ids:
                out[live[r]].append(t)
        if not keep:
            break
        backend.keep(batch, keep)
        live = [live[r] for r in keep]
        logits = backend.decode(batch, tokens[keep])
    return [backend.decode_text(ids) for ids in out]


def heldout_perplexities(corpus: list[Path], checkpoint: Path
                         ) -> tuple[dict[str, float], LSTMBackend, dict[int, MarkovChain], list[Example]]:
    """The LSTM's and Markov chains' perplexity on the checkpoint's own held-out split; also
    the models and that split, for further measures."""
    lstm = LSTMBackend.load(checkpoint)
    meta = torch.load(checkpoint, map_location="cpu", weights_only=True)["train_config"]
    train, val = split_examples(load_examples(corpus), meta["val_fraction"], meta["split_seed"])
    vocab = lstm.vocab
    ppl: dict[str, float] = {
        "lstm": round(perplexity(mean_nll(lstm.model, vocab, encode(vocab, val, MAX_LEN))), 2)
    }
    chains = {o: MarkovChain.train(train, vocab, o) for o in MARKOV_ORDERS}
    for order, chain in chains.items():
        ppl[f"markov_order{order}"] = round(chain.perplexity(val), 2)
    return ppl, lstm, chains, val


def compare(corpus: list[Path], checkpoint: Path, seed: int = 0) -> dict[str, Any]:
    """Perplexities and topicality figures for an LSTM checkpoint on its own held-out split."""
    ppl, lstm, chains, val = heldout_perplexities(corpus, checkpoint)
    train_paragraphs = len(load_examples(corpus)) - len(val)
    topics = sorted({e.topic for e in val})
    reference = _first_per_topic(val, topics)
    texts = {
        "lstm": sample(lstm, topics, seed),
        "markov_order3": sample(MarkovBackend(chains[3]), topics, seed),
        "corpus_reference": reference,
    }
    topical = {name: topicality(topics, t) for name, t in texts.items()}
    examples = [{"topic": t, "lstm": x} for t, x in list(zip(topics, texts["lstm"], strict=True))[:5]]
    return {
        "comparison": {
            "heldout_perplexity": ppl,
            "heldout_paragraphs": len(val),
            "heldout_topics": len(topics),
            "train_paragraphs": train_paragraphs,
        },
        "topicality": {
            **topical,
            "samples": examples,
            "method": f"sampled at temperature {SAMPLE_TEMPERATURE}, top-k {SAMPLE_TOP_K}, "
            f"seed {seed}; overlap = share of the topic's content words "
            "used by the paragraph",
        },
    }


def _first_per_topic(examples: Sequence[Example], topics: Sequence[str]) -> list[str]:
    first: dict[str, str] = {}
    for e in examples:
        first.setdefault(e.topic, e.text)
    return [first[t] for t in topics]


def report(results: dict[str, Any]) -> str:
    """The figures as a few readable lines."""
    lines = ["held-out perplexity (paragraph words + <eos>, same vocabulary):"]
    lines += [
        f"  {name:16s} {value:9.2f}" for name, value in results["comparison"]["heldout_perplexity"].items()
    ]
    lines.append("topicality (share of topic words used: own topic vs other topics, own best):")
    for name, t in results["topicality"].items():
        if isinstance(t, dict) and "own_topic_overlap" in t:
            lines.append(
                f"  {name:16s} {t['own_topic_overlap']:.3f} vs {t['other_topic_overlap']:.3f}, "
                f"best match {t['own_topic_best_match']:.0%} of {t['paragraphs']}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="LSTM vs Markov on the held-out split, and topicality.")
    p.add_argument("--corpus", type=Path, nargs="+", default=[Path("data/corpus.jsonl")])
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-write", action="store_true", help="print only; leave metrics.json alone")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = compare(a.corpus, a.checkpoint, a.seed)
    log.info("%s", report(results))
    if not a.no_write:
        path = a.checkpoint.parent / "metrics.json"
        metrics = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**metrics, **results}, indent=2))
        log.info("merged into %s", path)


if __name__ == "__main__":
    main()
