"""The story's names as token sequences, so that no repetition penalty keeps a row off them.

DRY, the no-repeat ban and the repetition penalty punish a token for having been written
before; a name must be written again and again, and a small model pushed off "Kagemrosu"
midway writes "Kagemrosokai". A row's guard knows each name's token sequences (with and
without a leading space) and says which tokens would continue one that the row has begun.
A name's first token is not spared: whether to name someone again is the model's choice under
the usual penalties (sparing it too let a row write "KingKingKing" and "Elena's smile at
Elena's smile": bench.story, 20 x 20, loops 1.5%).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class NameGuard:
    """Token sequences of the story's names; see the module docstring."""

    def __init__(self, sequences: Iterable[Sequence[int]]) -> None:
        self.sequences = tuple(tuple(s) for s in sequences if len(s))
        self.longest = max((len(s) for s in self.sequences), default=0)

    def __bool__(self) -> bool:
        return bool(self.sequences)

    def spared(self, written: Sequence[int]) -> set[int]:
        """The tokens that continue a name whose beginning `written` ends with."""
        spared: set[int] = set()
        if self.longest < 2 or not written:
            return spared
        tail = tuple(written[-(self.longest - 1):])
        for sequence in self.sequences:
            for done in range(1, len(sequence)):
                if tail[len(tail) - done:] == sequence[:done] and len(tail) >= done:
                    spared.add(sequence[done])
        return spared


def name_guard(encode: object, cast: Sequence[str]) -> NameGuard | None:
    """The guard for `cast`, given a backend's `name_token_ids(name) -> list of sequences`
    (None for a backend without one, or a story without names)."""
    if not cast or not callable(encode):
        return None
    guard = NameGuard(seq for name in cast for seq in encode(name))
    return guard or None
