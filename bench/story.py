"""Long stories: N topics x K paragraphs per backend, through the real engine.

    python -m bench.story [--backends smollm2,lstm,markov] [--topics 20] [--paragraphs 20]
                          [--slow-topics 10] [--slow-paragraphs 10] [--seed 0] [--set name=value]

Each story is an opening paragraph (/write) followed by continuations (/continue with the story
so far as history), K paragraphs in all. The stories run concurrently, one request per story at
a time, so they batch together in the engine as members' threads would. Per backend:

- loop rate: share of paragraphs with more than 20% of their 8-word sequences seen earlier in
  the same story (earlier paragraphs or earlier in the paragraph itself);
- novelty: distinct-4 over each whole story (unique 4-word sequences / all), averaged;
- coherence: MiniLM (all-MiniLM-L6-v2, the scorer of bench.quality) similarity of each paragraph
  to the one before and to the topic, at paragraphs 1, 5, 10 and 20;
- words per paragraph, and seconds per paragraph at paragraphs 1, 5, 10 and 20 (the story grows).

The last line is machine-readable (`name_key=value ...`). `--out FILE` saves every story as JSON.
lstm and markov use the --slow-* sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench.quality import Embedder
from bot.engine.requests import GenerationRequest
from bot.engine.worker import Engine
from models.base import Prompt
from models.params import GenerationParams, parse_setting
from models.registry import load_model

STORY_TOPICS = [
    "a lighthouse keeper who finds a message in a bottle", "a baker who opens a shop in a haunted street",
    "two sisters crossing a desert to find their father", "a clockmaker whose clocks start running backwards",
    "a girl who befriends a dragon in the mountains", "a sailor shipwrecked on a silent island",
    "a detective searching for a stolen violin", "a boy who builds a robot from scrap",
    "an old woman who plants a garden on the moon", "a knight who is afraid of the dark",
    "a librarian who finds a book that writes itself", "a fox and a crow who start a bakery",
    "a train that never stops at its last station", "a young witch who loses her broom",
    "a fisherman who catches a talking fish", "a village where it never stops snowing",
    "a painter whose portraits come alive", "an astronaut stranded on a red planet",
    "a street musician who plays for a king", "a family moving into an old farmhouse",
]
log = logging.getLogger("bench.story")
LOOP_NGRAM = 8  # words in the sequences that make a paragraph a loop
LOOP_SHARE = 0.2  # a paragraph with more than this share of its 8-word sequences seen before loops
CHECKPOINTS = (1, 5, 10, 20)  # paragraphs whose figures are shown
SLOW = ("lstm", "markov")


@dataclass
class Story:
    """One story's paragraphs and how long each took (submit to done, in seconds)."""

    topic: str
    paragraphs: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def grams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def looping_paragraphs(paragraphs: list[str]) -> list[bool]:
    """For each paragraph: do more than LOOP_SHARE of its 8-word sequences occur earlier in the story?"""
    seen: set[tuple[str, ...]] = set()
    loops = []
    for paragraph in paragraphs:
        own = grams(words_of(paragraph), LOOP_NGRAM)
        repeated = 0
        for gram in own:
            repeated += gram in seen
            seen.add(gram)
        loops.append(bool(own) and repeated / len(own) > LOOP_SHARE)
    return loops


def distinct_4(paragraphs: list[str]) -> float:
    story = grams(words_of(" ".join(paragraphs)), 4)
    return len(set(story)) / len(story) if story else 0.0


async def write_story(engine: Engine, base: GenerationParams, story: Story, paragraphs: int, seed: int) -> None:
    """The opening paragraph, then continuations with the story so far, one request at a time."""
    for index in range(paragraphs):
        prompt = Prompt(story.topic, list(story.paragraphs))
        began = time.perf_counter()
        handle = engine.submit(GenerationRequest(prompt, base.replace(seed=seed + index), fairness_key=story.topic))
        event = await handle.result()
        story.seconds.append(time.perf_counter() - began)
        story.paragraphs.append(event.text.strip() if event.kind == "done" else "")
        log.info("%s: paragraph %d in %.1f s", story.topic[:30], index + 1, story.seconds[-1])


async def write_stories(name: str, params: GenerationParams, topics: list[str], paragraphs: int,
                        seed: int) -> list[Story]:
    device = torch.device("cpu")
    loaded: list[Any] = []

    def loader(model: str) -> Any:
        loaded.append(load_model(model, device))
        return loaded[-1]

    engine = Engine(loader, name, max_batch=64, max_waiting=1000, max_per_user=1000)
    stories = [Story(topic) for topic in topics]
    async with engine:
        await asyncio.gather(*(write_story(engine, params, story, paragraphs, seed + 1000 * i)
                               for i, story in enumerate(stories)))
    weights = getattr(loaded[0], "model", None) if loaded else None
    if isinstance(weights, torch.nn.Module):
        print(f"{name}: {next(weights.parameters()).dtype} on {device}")
    return stories


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def measure(stories: list[Story], embedder: Embedder) -> dict[str, float]:
    """The figures of one backend's stories (see the module docstring)."""
    figures: dict[str, float] = {}
    loops = [flag for s in stories for flag in looping_paragraphs(s.paragraphs)]
    figures["loop_rate"] = mean([float(flag) for flag in loops])
    figures["identical"] = mean([float(p in s.paragraphs[:i]) for s in stories for i, p in enumerate(s.paragraphs)])
    figures["distinct_4"] = mean([distinct_4(s.paragraphs) for s in stories])
    figures["words"] = mean([float(len(p.split())) for s in stories for p in s.paragraphs])
    previous: list[float] = []
    by_paragraph_prev: dict[int, list[float]] = {}
    by_paragraph_topic: dict[int, list[float]] = {}
    for story in stories:
        vectors = embedder([p or "." for p in story.paragraphs])
        topic = embedder([story.topic])[0]
        to_topic = (vectors @ topic).tolist()
        to_previous = (vectors[1:] * vectors[:-1]).sum(-1).tolist()
        previous.extend(to_previous)
        for k in range(len(story.paragraphs)):
            by_paragraph_topic.setdefault(k + 1, []).append(to_topic[k])
            if k:
                by_paragraph_prev.setdefault(k + 1, []).append(to_previous[k - 1])
    figures["prev_sim"] = mean(previous)
    for k in CHECKPOINTS:
        if k in by_paragraph_topic:
            figures[f"topic_sim_{k}"] = mean(by_paragraph_topic[k])
            figures[f"s_per_par_{k}"] = mean([s.seconds[k - 1] for s in stories])
        if k in by_paragraph_prev:
            figures[f"prev_sim_{k}"] = mean(by_paragraph_prev[k])
    return figures


def report(name: str, topics: int, paragraphs: int, figures: dict[str, float], elapsed: float) -> None:
    shown = [k for k in CHECKPOINTS if f"topic_sim_{k}" in figures]
    print(f"\n{name}: {topics} stories x {paragraphs} paragraphs in {elapsed:.0f} s")
    print(f"  loop rate {figures['loop_rate']:.3f} (paragraphs identical to an earlier one: {figures['identical']:.3f})")
    print(f"  novelty (distinct-4 per story) {figures['distinct_4']:.3f}; words per paragraph {figures['words']:.1f}")
    print(f"  similarity to the paragraph before, mean {figures['prev_sim']:.3f}")
    print("  paragraph          " + " ".join(f"{k:>7}" for k in shown))
    print("  sim to topic       " + " ".join(f"{figures[f'topic_sim_{k}']:7.3f}" for k in shown))
    print("  sim to previous    " + " ".join(
        f"{figures[f'prev_sim_{k}']:7.3f}" if f"prev_sim_{k}" in figures else f"{'-':>7}" for k in shown))
    print("  s per paragraph    " + " ".join(f"{figures[f's_per_par_{k}']:7.1f}" for k in shown), flush=True)


def overrides(pairs: list[str]) -> dict[str, Any]:
    """`--set name=value` pairs, checked like a member's /settings set."""
    result = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        key, parsed = parse_setting(name, value)
        result[key] = parsed
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="smollm2,lstm,markov")
    parser.add_argument("--topics", type=int, default=20)
    parser.add_argument("--paragraphs", type=int, default=20, help="paragraphs per story (the opening included)")
    parser.add_argument("--slow-topics", type=int, default=10, help="topics for lstm and markov")
    parser.add_argument("--slow-paragraphs", type=int, default=10, help="paragraphs for lstm and markov")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a setting for every backend")
    parser.add_argument("--out", type=Path, help="save the stories as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    settings = overrides(args.set)
    embedder = Embedder()
    print(f"torch threads {torch.get_num_threads()}, seed {args.seed}, settings {settings or 'defaults'}")
    summary: list[str] = []
    saved: dict[str, list[dict[str, Any]]] = {}
    for name in args.backends.split(","):
        slow = name in SLOW
        topics = STORY_TOPICS[: args.slow_topics if slow else args.topics]
        paragraphs = args.slow_paragraphs if slow else args.paragraphs
        params = GenerationParams(model=name).replace(**settings)
        began = time.perf_counter()
        stories = asyncio.run(write_stories(name, params, topics, paragraphs, args.seed))
        figures = measure(stories, embedder)
        report(name, len(topics), paragraphs, figures, time.perf_counter() - began)
        saved[name] = [{"topic": s.topic, "paragraphs": s.paragraphs, "seconds": s.seconds} for s in stories]
        summary.append(" ".join(f"{name}_{key}={value:.3f}" for key, value in figures.items()
                                if key in ("loop_rate", "distinct_4", "prev_sim", "words")
                                or key.startswith(("topic_sim_", "s_per_par_"))))
    if args.out:
        args.out.write_text(json.dumps(saved, indent=1))
    print(" ".join(summary))


if __name__ == "__main__":
    main()
