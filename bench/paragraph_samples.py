"""Real paragraphs from the embedded model, as members would get them through the service.

    HF_HUB_OFFLINE=1 python -m bench.paragraph_samples [--topic TEXT] [--seeds 1-8] [--length N]

For each seed, one /write through `Service.write` (default settings otherwise, all seeds in one
batch) prints the longest text streamed before the end, the final paragraph, and the footer line
of facts when the code has one. "shrank" marks a final text shorter than what was already shown.
Runs on older checkouts too (it only uses Service.write and Generation.events).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bot.engine.worker import Engine
from bot.place import Place
from bot.service import Service
from bot.storage import Storage
from models.hf import default_dtype
from models.registry import load_model

HOSTILE_TOPIC = "@everyone <@&123> **unclosed bold"


def seed_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


async def one(service: Service, topic: str, seed: int | None, user: int, length: int | None) -> dict[str, Any]:
    overrides: dict[str, Any] = {"seed": seed, "max_new_tokens": length}
    generation = await service.write(Place(channel_id=1, user_id=user, guild_id=None), topic, overrides)
    shown, longest, final = "", 0, ""
    async for event in generation.events():
        if event.kind == "text":
            shown += event.text
            longest = max(longest, len(shown.rstrip()))
        elif event.kind in ("done", "error"):
            final = event.text
    facts = getattr(generation, "facts", None)
    footer = ""
    if facts is not None:
        from bot.paragraph_facts import facts_text
        footer = facts_text(facts)
    return {"seed": seed, "shown": longest, "final": final, "footer": footer}


async def main(topic: str, seeds: list[int | None], length: int | None) -> None:
    started = time.monotonic()
    engine = Engine(lambda name: load_model(name, torch.device("cpu")), "smollm2", max_batch=16, max_per_user=4)
    with tempfile.TemporaryDirectory() as folder:
        async with await Storage.open(Path(folder) / "samples.db") as storage, engine:
            service = Service(storage, engine, "smollm2", cooldown_s=0.0)
            results = await asyncio.gather(*(one(service, topic, seed, 100 + i, length)
                                             for i, seed in enumerate(seeds)))
    dtype = str(default_dtype(torch.device("cpu"))).removeprefix("torch.")
    print(f"topic {topic!r}; {len(seeds)} paragraphs in {time.monotonic() - started:.1f} s "
          f"(model load included; CPU, {torch.get_num_threads()} threads, {dtype})")
    for result in results:
        final = result["final"]
        mark = "  SHRANK" if result["shown"] > len(final) else ""
        print(f"\n--- seed {result['seed']}: shown up to {result['shown']} chars, final {len(final)} chars{mark}")
        print(final)
        if result["footer"]:
            print(f"-# {result['footer']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", default=HOSTILE_TOPIC)
    parser.add_argument("--seeds", default="1-8", help="a range such as 1-8, or 'none' for a drawn seed")
    parser.add_argument("--length", type=int, default=None, help="max_new_tokens (default: the setting's)")
    args = parser.parse_args()
    chosen: list[int | None] = [None] if args.seeds == "none" else list(seed_range(args.seeds))
    asyncio.run(main(args.topic, chosen, args.length))
