"""Does the `style` setting change the voice without losing the topic? (`bench.quality --style`)

The same topics and seeds are written with no style and with each of STYLES (SmolLM2, the
project's defaults). Under all-MiniLM-L6-v2, a styled paragraph should sit closer to its style's
description than the unstyled paragraph on the same topic does (similarity rises), while its
similarity to the topic drops by at most TOPICALITY_TOLERANCE.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import torch

from models.params import GenerationParams

STYLES = ("gothic horror, second person", "a bedtime story for a six-year-old", "en français")
TOPICALITY_TOLERANCE = 0.05  # the bound on how much topicality a style may cost

Generate = Callable[[GenerationParams, list[str], int, str | None], Awaitable[list[str]]]
Embed = Callable[[list[str]], torch.Tensor]


def similarity(embed: Embed, texts: list[str], others: list[str]) -> float:
    """Mean cosine similarity of each text with its partner (embeddings are normalised)."""
    return float((embed([t or "." for t in texts]) * embed(others)).sum(-1).mean())


def style_report(generate: Generate, embed: Embed, topics: list[str], seed: int) -> list[str]:
    """Lines of the report: for each style, similarity to the style and to the topic, with and
    without it, for the same topics and seeds."""
    config = GenerationParams(model="smollm2")
    began = time.perf_counter()
    plain = asyncio.run(generate(config, topics, seed, None))
    lines = [f"{len(topics)} topics, seed {seed}, smollm2 with its defaults; no style: "
             f"{time.perf_counter() - began:.0f}s",
             f"{'style':36} {'to style':>17} {'topicality':>17} {'words':>11} {'time':>5}",
             f"{'':36} {'without -> with':>17} {'without -> with':>17}"]
    plain_topicality = similarity(embed, plain, topics)
    for style in STYLES:
        began = time.perf_counter()
        styled = asyncio.run(generate(config, topics, seed, style))
        description = [style] * len(topics)
        before, after = similarity(embed, plain, description), similarity(embed, styled, description)
        topical = similarity(embed, styled, topics)
        words = sum(len(t.split()) for t in styled) / len(styled)
        plain_words = sum(len(t.split()) for t in plain) / len(plain)
        verdict = "ok" if after > before and plain_topicality - topical <= TOPICALITY_TOLERANCE else "FAILS"
        lines.append(f"{style:36} {before:7.3f} -> {after:5.3f} {plain_topicality:7.3f} -> {topical:5.3f} "
                     f"{plain_words:4.0f} -> {words:4.0f} {time.perf_counter() - began:4.0f}s {verdict}")
        lines.append(f"  e.g. {topics[0]!r}: {styled[0][:160]!r}")
    return lines
