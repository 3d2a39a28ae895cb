"""Members' lines folded into one direction: in order, without mention syntax, the latest that fit."""

from __future__ import annotations

from bot.story_channels import folded


def test_lines_are_joined_in_order_without_their_mentions() -> None:
    assert folded(["the mast breaks <@42>", "  ", "a gull lands @everyone"], 200) == \
        "the mast breaks; a gull lands everyone"


def test_only_the_latest_lines_that_fit_are_kept() -> None:
    lines = ["a" * 30, "b" * 30, "c" * 30]
    assert folded(lines, 62) == f"{'b' * 30}; {'c' * 30}"
    assert folded(lines, 10) == "c" * 30  # the latest alone, however long: the service refuses it
