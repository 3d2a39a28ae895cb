"""The directions bench.story gives every second continuation, as a member's /continue would.

Each is one concrete event that a paragraph can visibly follow, in words of its own, so that
MiniLM tells them apart (tests/unit/test_story_measures.py checks no two are close) and
`direction_followed` can see which one a paragraph took. They fit any of the bench's topics, and
they are the bench's own: nothing in models/ or bot/ may be tuned to this list.
"""

from __future__ import annotations

import random

DIRECTIONS: tuple[str, ...] = (
    "a storm tears the roof away",
    "a stranger arrives with a warning",
    "she finds a hidden door in the cellar",
    "a fire breaks out in the kitchen",
    "an old friend returns after many years",
    "a letter reveals a family secret",
    "the river floods the road",
    "a thief steals the only key",
    "a child goes missing in the forest",
    "the ground shakes and a wall cracks open",
    "a wolf howls outside the window at midnight",
    "a map falls out of an old coat",
    "the lights go out across the whole town",
    "a soldier knocks on the door asking for shelter",
    "a bird carries a silver ring to the windowsill",
    "the bridge collapses behind them",
    "a doctor brings news of a strange illness",
    "a horse bolts and runs off with the cart",
    "someone sings a song nobody has heard before",
    "a ship appears on the horizon with black sails",
    "snow falls in the middle of summer",
    "a mirror shows a face that is not her own",
    "a rival challenges him to a race",
    "the well runs dry overnight",
    "a merchant offers gold for the old music box",
    "an injured dog limps up the path",
    "a bell rings in the abandoned church tower",
    "a feast is held and someone poisons the wine",
    "a telescope shows a light moving on the mountain",
    "an earthquake opens a cave beneath the garden",
)


def directions_for(seed: int, count: int) -> list[str]:
    """`count` directions for one story: distinct (while the list lasts), in an order drawn by
    `seed`, so every story follows its own sequence and a rerun gives the same one."""
    rng = random.Random(seed)
    drawn: list[str] = []
    while len(drawn) < count:
        # Past the list's length a new round begins; a story that long repeats directions.
        drawn.extend(rng.sample(DIRECTIONS, len(DIRECTIONS)))
    return drawn[:count]
