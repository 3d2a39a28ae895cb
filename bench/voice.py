"""Does a fine-tuned model write in the voice of its corpus when nobody asks for it?

    python -m bench.voice --corpus data/voice/fairytale.jsonl --model runs/ft-fairytale [--topics 20]

Both models get the same plain `/write` requests (the bot's default settings and prompt, no
style instruction) on topics that appear nowhere in the corpus, with the same seeds. Scored
with all-MiniLM-L6-v2 (bench.quality's embedder): mean cosine similarity to the held-out
paragraphs of the voice corpus (the split the model's finetune.json says was held out) and, as a control, to as
many paragraphs of the plain corpus (data/corpus.jsonl); topicality (cosine to the topic); and
the share of paragraphs that open the way the voice does ("Once upon a time").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from pathlib import Path

import torch

from bench.quality import TOPICS, Embedder, generate_all
from models.finetune.sources import read_files
from models.hf import load_hf_model
from models.params import GenerationParams
from models.registry import CORPUS
from models.text.data import split_examples

log = logging.getLogger(__name__)

OPENING = "once upon a time"


def voice_scores(texts: list[str], topics: list[str], voice: torch.Tensor, plain: torch.Tensor,
                 embedder: Embedder) -> dict[str, float]:
    """Mean similarity to the voice's held-out paragraphs and to plain ones, topicality, opening share."""
    vectors = embedder([t or "." for t in texts])
    return {
        "to_voice": float((vectors @ voice.T).mean()),
        "to_plain": float((vectors @ plain.T).mean()),
        "topicality": float((vectors * embedder(topics)).sum(-1).mean()),
        "opening_share": sum(t.lower().startswith(OPENING) for t in texts) / max(1, len(texts)),
        "words": sum(len(t.split()) for t in texts) / max(1, len(texts)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True, help="the voice corpus the model was tuned on")
    parser.add_argument("--model", type=Path, required=True, help="the fine-tuned model folder")
    parser.add_argument("--base", default="smollm2")
    parser.add_argument("--topics", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the figures and paragraphs as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    corpus = read_files([args.corpus])
    tuned_with = json.loads((args.model / "finetune.json").read_text())["config"]
    _, held_out = split_examples(corpus, tuned_with["val_fraction"], tuned_with["split_seed"])  # its own split
    seen = {p.topic.lower() for p in corpus}
    topics = [t for t in TOPICS if t.lower() not in seen][: args.topics]
    plain = read_files([CORPUS])[: len(held_out)]
    embedder = Embedder()
    voice_vectors, plain_vectors = embedder([p.text for p in held_out]), embedder([p.text for p in plain])
    judge = load_hf_model(args.base, torch.device("cpu"))
    results: dict[str, dict] = {}
    for name in (args.base, str(args.model)):
        began = time.perf_counter()
        texts = asyncio.run(generate_all(GenerationParams(model=name), topics, args.seed, judge))
        scores = voice_scores(texts, topics, voice_vectors, plain_vectors, embedder)
        scores["seconds"] = round(time.perf_counter() - began, 1)
        results[name] = {"scores": scores, "paragraphs": dict(zip(topics, texts, strict=True))}
        log.info("%s: %s", name, json.dumps(scores))
    report = {"topics": topics, "heldout_voice_paragraphs": len(held_out), "processor": "cpu", "dtype":
              str(judge.model.dtype).removeprefix("torch."), "results": results}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    base, tuned = (results[n]["scores"] for n in (args.base, str(args.model)))
    log.info("%-12s %9s %9s %9s %9s", "", "to voice", "to plain", "topical", "opening")
    for label, s in (("base", base), ("fine-tuned", tuned)):
        log.info("%-12s %9.3f %9.3f %9.3f %9.2f", label, s["to_voice"], s["to_plain"], s["topicality"],
                 s["opening_share"])


if __name__ == "__main__":
    main()
