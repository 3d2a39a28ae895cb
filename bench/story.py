"""Long stories as a reader sees them: N topics x K paragraphs per backend, through the real engine.

    python -m bench.story [--backends smollm2,lstm,markov] [--topics 20] [--paragraphs 20]
                          [--slow-topics 10] [--slow-paragraphs 10] [--seed 0] [--set name=value]
                          [--read N] [--out FILE]

Each story is an opening paragraph (/write) followed by continuations (/continue with the story
so far as history and its cast, models.story_cast), K paragraphs in all. Every second
continuation (paragraphs 3, 5, 7, ...) carries a direction, as a member's /continue would: one
event from bench/story_directions.py, each story drawing its own distinct sequence by seed. The
stories run concurrently, one request per story at a time, so they batch together in the engine
as members' threads would. Per backend, over the continuations (the opening is not judged):

- talks about story: share of continuations that talk about the story, the writing or the
  reader instead of telling it ("The tale goes on", "In the following paragraphs", "#quest",
  a numbered list, "Title:"); the detector is bench/story_measures.py's own, broader than the
  phrases the engine bans, and the phrases it found are printed;
- retells: share whose MiniLM cosine to some earlier paragraph of the story is 0.85 or more;
  echoes: the same at 0.75 (two hand-written stories that move on: 0.35-0.65 each paragraph;
  SmolLM2's paraphrases of its own earlier paragraphs: 0.70-0.93, so 0.85 misses many), and the
  mean closest cosine; 3-word phrases already in the story: the mean share of a continuation's
  3-word sequences an earlier paragraph has (a retelling keeps its phrases where a change of
  person hides it from MiniLM; the hand-written stories: 0.00, SmolLM2: about 0.2);
- direction followed: of the continuations with a direction, the share whose own direction is
  the closest (MiniLM) of all the directions that story used; chance is 1 / directions per story;
  of all: the share whose own direction is also closer than every other direction of the bench's
  list (chance 1 / 30; a short story's two directions alone give a paragraph that follows neither
  an even chance: read against 12 directed paragraphs, "of all" agreed with a reader 10 times,
  the story's own 8);
- keeps name: of stories whose opening has a proper name (models.story_cast.names_in), the share
  of their continuations that use a word of one exactly (case-sensitive, a whole word);
- unfinished: share of continuations with a line that stops mid-sentence (no . ! ? at its end):
  a next paragraph begun and cut (a last line "Alex"), text cut off at the length limit;
- invented per 1000: lower-case words wordfreq has never seen in English (zipf 0; hyphenated
  compounds split, capitalised words and words under 3 letters not judged) per 1,000 words;
  the words are printed for a reader to check;
- loop rate: share of paragraphs (the opening included, as before) with more than 20% of their
  8-word sequences seen earlier in the story; novelty: distinct-4 over each whole story;
- coherence: MiniLM (all-MiniLM-L6-v2, bench.quality's scorer) similarity of each paragraph to
  the one before and to the topic, at paragraphs 1, 5, 10 and 20;
- words per paragraph, and seconds per paragraph at paragraphs 1, 5, 10 and 20 (the story grows).

`--read N` prints N whole stories per backend, each paragraph with its direction and what the
measures found in it. The last line is machine-readable (`name_key=value ...`). `--out FILE`
saves every story as JSON, directions included. lstm and markov use the --slow-* sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench.quality import Embedder
from bench.story_directions import DIRECTIONS, directions_for
from bench.story_measures import Marks, distinct_4, mark_story
from bot.engine.requests import GenerationRequest
from bot.engine.worker import Engine
from models.base import Prompt
from models.params import GenerationParams, parse_setting
from models.registry import load_model
from models.story_cast import cast_of, names_in

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
CHECKPOINTS = (1, 5, 10, 20)  # paragraphs whose figures are shown
SLOW = ("lstm", "markov")
ECHO_COSINE = 0.75  # closest-earlier cosine a reader already calls "said before" (see the docstring)
SHOWN_WORDS = 20  # invented words printed
SHOWN_PHRASES = 12  # meta-talk phrases printed
SUMMARY_KEYS = ("talks_about_story", "retells", "echoes", "reused_3grams", "direction_followed", "direction_chance",
                "direction_of_all", "keeps_name", "unfinished",
                "invented_per_1000", "loop_rate", "distinct_4", "prev_sim", "words")


@dataclass
class Story:
    """One story's paragraphs, the direction each was given (None for none) and how long each
    took (submit to done, in seconds)."""

    topic: str
    paragraphs: list[str] = field(default_factory=list)
    directions: list[str | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def direction_plan(paragraphs: int, seed: int) -> list[str | None]:
    """The direction of each paragraph: none for the opening and odd continuations, the story's
    own drawn sequence on continuations 2, 4, 6, ... (paragraphs 3, 5, 7, ...)."""
    drawn = iter(directions_for(seed, max(0, (paragraphs - 1) // 2)))
    return [next(drawn) if index and index % 2 == 0 else None for index in range(paragraphs)]


async def write_story(engine: Engine, base: GenerationParams, story: Story, paragraphs: int, seed: int) -> None:
    """The opening paragraph, then continuations with the story so far, one request at a time."""
    for index, direction in enumerate(direction_plan(paragraphs, seed)):
        prompt = Prompt(story.topic, list(story.paragraphs), direction=direction, cast=cast_of(story.paragraphs))
        began = time.perf_counter()
        handle = engine.submit(GenerationRequest(prompt, base.replace(seed=seed + index), fairness_key=story.topic))
        event = await handle.result()
        story.seconds.append(time.perf_counter() - began)
        story.paragraphs.append(event.text.strip() if event.kind == "done" else "")
        story.directions.append(direction)
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


def reader_figures(stories: list[Story], marks: list[list[Marks]]) -> dict[str, float]:
    """What a reader finds in the continuations (the opening, marks[s][0], is not judged)."""
    later = [m for story_marks in marks for m in story_marks[1:]]
    directed = [(m, s) for s, story_marks in zip(stories, marks, strict=True) for m in story_marks if m.followed is not None]
    named = [m for m in later if m.kept_name is not None]
    words = sum(m.words for m in later)
    return {
        "talks_about_story": mean([float(bool(m.meta)) for m in later]),
        "retells": mean([float(m.retells) for m in later]),
        "echoes": mean([float((m.closest_earlier or 0.0) >= ECHO_COSINE) for m in later]),
        "closest_earlier": mean([m.closest_earlier or 0.0 for m in later]),
        "reused_3grams": mean([m.reused or 0.0 for m in later]),
        "direction_followed": mean([float(bool(m.followed)) for m, _ in directed]),
        # Each directed paragraph picks among its own story's distinct directions.
        "direction_chance": mean([1 / len(set(filter(None, s.directions))) for _, s in directed]),
        "direction_of_all": mean([float(bool(m.followed_of_all)) for m, _ in directed]),
        "keeps_name": mean([float(bool(m.kept_name)) for m in named]),
        "named_stories": float(sum(bool(names_in(s.paragraphs[0])) for s in stories if s.paragraphs)),
        "unfinished": mean([float(bool(m.unfinished)) for m in later]),
        "invented_per_1000": 1000 * sum(len(m.invented) for m in later) / words if words else float("nan"),
        "loop_rate": mean([float(m.loops) for story_marks in marks for m in story_marks]),
    }


def coherence_figures(stories: list[Story], embedder: Embedder) -> dict[str, float]:
    """MiniLM similarity to the paragraph before and to the topic, and seconds, at CHECKPOINTS."""
    figures: dict[str, float] = {}
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


def measure(stories: list[Story], embedder: Embedder) -> tuple[dict[str, float], list[list[Marks]]]:
    """The figures of one backend's stories (see the module docstring) and each paragraph's marks."""
    marks = [mark_story(s.paragraphs, s.directions, names_in(s.paragraphs[0]) if s.paragraphs else [], embedder,
                        DIRECTIONS) for s in stories]
    figures = reader_figures(stories, marks)
    figures["identical"] = mean([float(p in s.paragraphs[:i]) for s in stories for i, p in enumerate(s.paragraphs)])
    figures["distinct_4"] = mean([distinct_4(s.paragraphs) for s in stories])
    figures["words"] = mean([float(len(p.split())) for s in stories for p in s.paragraphs])
    figures.update(coherence_figures(stories, embedder))
    return figures, marks


def shown(found: Counter[str], most: int, separator: str) -> str:
    """The `most` commonest things found, with their counts."""
    return separator.join(f"{x} x{n}" if n > 1 else x for x, n in found.most_common(most)) or "none"


def report(name: str, stories: list[Story], figures: dict[str, float], marks: list[list[Marks]],
           elapsed: float) -> None:
    f = figures
    columns = [k for k in CHECKPOINTS if f"topic_sim_{k}" in f]
    later = [m for story_marks in marks for m in story_marks[1:]]
    print(f"\n{name}: {len(stories)} stories x {len(stories[0].paragraphs)} paragraphs in {elapsed:.0f} s; "
          f"{len(later)} continuations judged")
    print(f"  talks about the story   {f['talks_about_story']:.3f}")
    print(f"  retells (cosine >= 0.85) {f['retells']:.3f}; echoes (>= {ECHO_COSINE}) {f['echoes']:.3f}; "
          f"closest earlier paragraph, mean {f['closest_earlier']:.3f}")
    print(f"  3-word phrases already in the story {f['reused_3grams']:.3f} (a written story that moves on: about 0)")
    print(f"  direction followed      {f['direction_followed']:.3f} (chance {f['direction_chance']:.3f}); "
          f"closest of all {len(DIRECTIONS)} directions {f['direction_of_all']:.3f} (chance {1 / len(DIRECTIONS):.3f})")
    print(f"  unfinished              {f['unfinished']:.3f}: "
          + shown(Counter(repr(line[-40:]) for m in later for line in m.unfinished), SHOWN_PHRASES, "; "))
    print(f"  keeps a name            {f['keeps_name']:.3f} ({f['named_stories']:.0f} of {len(stories)} "
          "openings have a name)")
    print(f"  invented per 1000 words {f['invented_per_1000']:.2f}: "
          + shown(Counter(w for m in later for w in m.invented), SHOWN_WORDS, ", "))
    print("  meta-talk found: " + shown(Counter(p.lower() for m in later for p in m.meta), SHOWN_PHRASES, "; "))
    print(f"  loop rate {f['loop_rate']:.3f} (paragraphs identical to an earlier one: {f['identical']:.3f})")
    print(f"  novelty (distinct-4 per story) {f['distinct_4']:.3f}; words per paragraph {f['words']:.1f}")
    print(f"  similarity to the paragraph before, mean {f['prev_sim']:.3f}")
    print("  paragraph          " + " ".join(f"{k:>7}" for k in columns))
    print("  sim to topic       " + " ".join(f"{f[f'topic_sim_{k}']:7.3f}" for k in columns))
    print("  sim to previous    " + " ".join(
        f"{f[f'prev_sim_{k}']:7.3f}" if f"prev_sim_{k}" in f else f"{'-':>7}" for k in columns))
    print("  s per paragraph    " + " ".join(f"{f[f's_per_par_{k}']:7.1f}" for k in columns), flush=True)


def marks_line(mark: Marks) -> str:
    """What the measures found in one paragraph, for a reader to check against the text."""
    found = []
    if mark.meta:
        found.append("TALKS ABOUT THE STORY: " + "; ".join(mark.meta))
    if mark.closest_earlier is not None:
        found.append(f"closest earlier {mark.closest_earlier:.2f}" + (" RETELLS" if mark.retells else "")
                     + f", {mark.reused or 0.0:.0%} of its 3-word phrases seen before")
    if mark.followed is not None:
        found.append(("direction followed" if mark.followed else "DIRECTION NOT FOLLOWED")
                     + ("" if mark.followed_of_all else f" (not the closest of all {len(DIRECTIONS)})"))
    if mark.kept_name is False:
        found.append("NO NAME FROM THE OPENING")
    if mark.unfinished:
        found.append("UNFINISHED: " + "; ".join(repr(line[-40:]) for line in mark.unfinished))
    if mark.invented:
        found.append("invented: " + ", ".join(mark.invented))
    if mark.loops:
        found.append("LOOPS")
    return "     [" + " | ".join(found) + "]" if found else ""


def read_stories(name: str, stories: list[Story], marks: list[list[Marks]], count: int) -> None:
    """`count` whole stories, every paragraph numbered, with its direction and its marks."""
    for story, story_marks in list(zip(stories, marks, strict=True))[:count]:
        print(f"\n--- {name}: {story.topic} (names in the opening: {', '.join(names_in(story.paragraphs[0])) or 'none'})")
        for number, (text, direction, mark) in enumerate(
                zip(story.paragraphs, story.directions, story_marks, strict=True), start=1):
            print(f"\n{number}." + (f" (direction: {direction})" if direction else ""))
            print(text)
            if line := marks_line(mark):
                print(line)
    print(flush=True)


def overrides(pairs: list[str]) -> dict[str, Any]:
    """`--set name=value` pairs, checked like a member's /settings set."""
    result = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        key, parsed = parse_setting(name, value)
        result[key] = parsed
    return result


def summary_line(name: str, figures: dict[str, float]) -> str:
    return " ".join(f"{name}_{key}={value:.3f}" for key, value in figures.items()
                    if key in SUMMARY_KEYS or key.startswith(("topic_sim_", "s_per_par_")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="smollm2,lstm,markov")
    parser.add_argument("--topics", type=int, default=20)
    parser.add_argument("--paragraphs", type=int, default=20, help="paragraphs per story (the opening included)")
    parser.add_argument("--slow-topics", type=int, default=10, help="topics for lstm and markov")
    parser.add_argument("--slow-paragraphs", type=int, default=10, help="paragraphs for lstm and markov")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a setting for every backend")
    parser.add_argument("--read", type=int, default=0, metavar="N", help="print N whole stories per backend")
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
        figures, marks = measure(stories, embedder)
        report(name, stories, figures, marks, time.perf_counter() - began)
        read_stories(name, stories, marks, args.read)
        saved[name] = [{"topic": s.topic, "paragraphs": s.paragraphs, "directions": s.directions,
                        "seconds": s.seconds} for s in stories]
        summary.append(summary_line(name, figures))
    if args.out:
        args.out.write_text(json.dumps(saved, indent=1))
    print(" ".join(summary))


if __name__ == "__main__":
    main()
