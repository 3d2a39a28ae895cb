"""The one settings definition: ranges, parsing, layering and clear refusals."""

from __future__ import annotations

import math

import pytest

from models.params import SETTINGS, GenerationParams, SettingError, parse_setting


def test_defaults_are_valid() -> None:
    assert GenerationParams().validate() == GenerationParams()


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("temperature", "0.9", 0.9), ("top_k", "50", 50), ("strategy", "beam", "beam"),
    ("stop_at_paragraph", "off", False), ("seed", "random", None), ("Top-P", "0.5", 0.5),
    ("strategy", "Greedy", "greedy"), ("strategy", "top-p", "top_p"), ("strategy", " Top K ", "top_k"),
])
def test_parse_setting_accepts_values_in_range(name: str, text: str, expected: object) -> None:
    assert parse_setting(name, text)[1] == expected


@pytest.mark.parametrize(("name", "text", "fragment"), [
    ("top_p", "1.5", "top_p must be in 0.01 to 1, got 1.5"),
    ("temperature", "nan", "temperature must be a number"),
    ("temperature", "inf", "temperature must be a number"),
    ("top_k", "2.5", "top_k must be a whole number"),
    ("strategy", "wild", "strategy must be one of greedy, beam, top_k, top_p, sample"),
    ("max_new_tokens", "100000", "max_new_tokens must be in 8 to 512, got 100000"),
    ("colour", "blue", "unknown setting 'colour'"),
    ("temperature", "warm", "temperature must be a number from 0.05 to 2, got 'warm'"),
])
def test_bad_values_are_refused_with_a_message_naming_setting_range_and_value(
        name: str, text: str, fragment: str) -> None:
    with pytest.raises(SettingError) as refused:
        parse_setting(name, text)
    assert fragment in str(refused.value)


def test_min_new_tokens_may_not_exceed_max() -> None:
    with pytest.raises(SettingError, match="min_new_tokens"):
        GenerationParams(max_new_tokens=20, min_new_tokens=40).validate()


def test_stored_settings_with_bad_or_unknown_keys_still_load() -> None:
    params = GenerationParams.from_dict({"temperature": 0.3, "top_k": -5, "ghost": 1, "seed": math.nan})
    assert params.temperature == 0.3 and params.top_k == GenerationParams().top_k
    assert params.seed is None


def test_round_trip_through_dict() -> None:
    params = GenerationParams(strategy="beam", num_beams=3, seed=42, stop="THE END")
    assert GenerationParams.from_dict(params.to_dict()) == params


def test_every_setting_documents_its_range() -> None:
    for spec in SETTINGS.values():
        assert spec.description and spec.range_text()


def test_strategy_decides_which_filters_apply() -> None:
    assert GenerationParams(strategy="top_p").effective_top_k == 0
    assert GenerationParams(strategy="top_k").effective_top_p == 1.0
    assert not GenerationParams(strategy="greedy").do_sample


def test_banned_phrases_are_phrases_separated_by_semicolons_each_stripped_once() -> None:
    assert parse_setting("banned_phrases", " a testament to ;In the heart of; ;a testament to") == (
        "banned_phrases", ("a testament to", "In the heart of"))
    assert parse_setting("banned_phrases", "none") == ("banned_phrases", ())


def test_banned_phrases_refuse_too_many_too_long_or_a_mention_in_a_clear_sentence() -> None:
    for text, says in ((";".join(f"phrase {i}" for i in range(21)), "at most 20 phrases"),
                       ("x" * 41, "at most 40 characters"), ("hello <@123>", "must not contain mentions"),
                       ("@everyone", "must not contain mentions"), ("zero\u200bwidth", "control or invisible")):
        with pytest.raises(SettingError, match=says):
            parse_setting("banned_phrases", text)
