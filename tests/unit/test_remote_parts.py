"""The remote path's parts: each dialect's fields, the breaker, replica choice, the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from bot.engine.remote.breaker import CircuitBreaker
from bot.engine.remote.dialects import sampling_fields, unsupported
from bot.engine.remote.prompting import prompt_fields
from bot.engine.remote.replicas import Endpoint, choose
from bot.engine.remote.spec import RemoteModel
from bot.formatting import settings_table
from bot.preferences import EffectiveSettings
from models.base import Prompt
from models.params import GenerationParams

DEFAULTS = GenerationParams(model="remote")  # top_k 40, repetition 1.1, no-repeat 2, DRY 0.8, min 40


def test_vllm_and_sglang_get_top_k_min_tokens_and_repetition_penalty_as_extra_fields() -> None:
    for dialect in ("vllm", "sglang"):
        body = sampling_fields(DEFAULTS.replace(seed=3), dialect, 3)
        assert body == {"max_tokens": 160, "temperature": 0.7, "top_p": 0.9, "seed": 3, "top_k": 40,
                        "repetition_penalty": 1.1, "min_tokens": 40}
        assert unsupported(DEFAULTS, dialect) == ("no_repeat_ngram_size", "dry_multiplier")


def test_llamacpp_gets_its_own_names_and_dry_for_continuations_only() -> None:
    first = sampling_fields(DEFAULTS, "llamacpp", None)
    later = sampling_fields(DEFAULTS, "llamacpp", None, continuation=True)
    assert first["top_k"] == 40 and first["repeat_penalty"] == 1.1 and "dry_multiplier" not in first
    assert {k: later[k] for k in ("dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n")} == {
        "dry_multiplier": 0.8, "dry_base": 1.75, "dry_allowed_length": 2, "dry_penalty_last_n": -1}
    assert unsupported(DEFAULTS, "llamacpp") == ("no_repeat_ngram_size", "min_new_tokens")


def test_ollama_and_openai_get_only_openai_fields_and_the_rest_is_named() -> None:
    for dialect in ("ollama", "openai"):
        body = sampling_fields(DEFAULTS.replace(stop="THE END"), dialect, 9)
        assert set(body) == {"max_tokens", "temperature", "top_p", "seed", "stop"} and body["stop"] == ["THE END"]
        assert unsupported(DEFAULTS, dialect) == ("top_k", "no_repeat_ngram_size", "repetition_penalty",
                                                  "min_new_tokens", "dry_multiplier")


def test_greedy_is_temperature_zero_and_beam_is_marked_unsupported() -> None:
    greedy = sampling_fields(DEFAULTS.replace(strategy="greedy"), "vllm", 5)
    assert greedy["temperature"] == 0.0 and greedy["top_p"] == 1.0 and "seed" not in greedy and "top_k" not in greedy
    assert "strategy" in unsupported(DEFAULTS.replace(strategy="beam"), "vllm")
    assert unsupported(DEFAULTS.replace(no_repeat_ngram_size=0, dry_multiplier=0.0), "vllm") == ()


def test_settings_show_marks_what_the_model_cannot_honour() -> None:
    table = settings_table(EffectiveSettings(DEFAULTS), unsupported=unsupported(DEFAULTS, "ollama")).splitlines()
    marked = [line.split(" = ")[0] for line in table if line.endswith("[not supported by remote]")]
    assert marked == ["top_k", "no_repeat_ngram_size", "repetition_penalty", "dry_multiplier", "dry_base",
                      "dry_allowed_length", "dry_penalty_last_n", "min_new_tokens"]


def test_a_long_story_is_cut_from_the_middle_to_fit_the_window() -> None:
    model = RemoteModel("r", ("http://x/v1",), "m", context_tokens=1024)
    history = [f"Paragraph {i}. " + "word " * 60 for i in range(30)]
    messages = prompt_fields(model, Prompt("a storm", history), 160)["messages"]
    story = messages[2]["content"]  # the story is the model's own earlier answer
    assert "Paragraph 0." in story and "Paragraph 29." in story and "Paragraph 10." not in story
    assert "[...]" in story


def test_the_breaker_goes_closed_open_half_open_closed() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures_to_open=3, cooldown_s=10, clock=lambda: now[0])
    assert [breaker.failure(), breaker.failure(), breaker.state] == [False, False, "closed"]
    assert breaker.failure() is True and breaker.state == "open" and not breaker.closed
    now[0] = 10.0
    assert breaker.state == "half_open"
    breaker.failure()  # the probe failed: open again, and the next probe waits twice as long
    assert breaker.state == "open" and breaker.cooldown_s == 20
    now[0] = 30.0
    assert breaker.state == "half_open"
    breaker.success()
    assert breaker.state == "closed" and breaker.cooldown_s == 10 and breaker.failures == 0


def test_a_story_keeps_its_replica_and_stories_spread_across_replicas() -> None:
    replicas = [Endpoint(f"http://10.0.0.{i}:8000/v1", None, 4) for i in range(3)]
    first = choose(replicas, "story-7")
    assert all(choose(replicas, "story-7") is first for _ in range(5))
    used = {choose(replicas, f"story-{n}").url for n in range(60)}  # type: ignore[union-attr]
    assert len(used) == 3


def test_a_story_moves_only_when_its_replica_is_down_or_full() -> None:
    replicas = [Endpoint(f"http://10.0.0.{i}:8000/v1", None, 1) for i in range(3)]
    home = choose(replicas, "story-1")
    assert home is not None
    home.breaker.failure(), home.breaker.failure(), home.breaker.failure()
    elsewhere = choose(replicas, "story-1")
    assert elsewhere is not None and elsewhere is not home
    home.breaker.success()
    home.in_flight = 1  # full: the next replica with room takes it
    spill = choose(replicas, "story-1")
    assert spill is not home and spill is not None and spill.has_room
    for replica in replicas:
        replica.in_flight = 1
    assert choose(replicas, "story-1") is home  # all full: it waits for its own


def test_remote_models_come_from_a_toml_file_with_the_key_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "remote.toml"
    path.write_text('[[model]]\nname = "llama"\nurls = ["http://10.0.0.5:8000/v1/", "http://10.0.0.6:8000/v1"]\n'
                    'served_model = "meta-llama/Llama-3.1-8B-Instruct"\ndialect = "vllm"\n'
                    'api_key_env = "LLAMA_KEY"\nmax_in_flight = 32\n')
    config = load_config({"REMOTE_MODELS_FILE": str(path), "LLAMA_KEY": "sk-hidden-123"}, dotenv=None)
    (model,) = config.remote_models
    assert model.urls == ("http://10.0.0.5:8000/v1", "http://10.0.0.6:8000/v1") and model.max_in_flight == 32
    assert model.api_key.reveal() == "sk-hidden-123"
    assert "sk-hidden-123" not in repr(config) and "sk-hidden-123" not in repr(model)


def test_a_bad_remote_models_file_is_refused_with_one_line_per_problem(tmp_path: Path) -> None:
    path = tmp_path / "remote.toml"
    path.write_text('[[model]]\nname = "x"\nurls = ["ftp://nope"]\ndialect = "tgi"\napi_key_env = "MISSING"\n'
                    'max_in_flight = 0\ncolour = "red"\n')
    with pytest.raises(ConfigError) as caught:
        load_config({"REMOTE_MODELS_FILE": str(path)}, dotenv=None)
    problems = "\n".join(caught.value.problems)
    for part in ("unknown field 'colour'", "urls must be", "served_model is missing", "dialect must be one of",
                 "MISSING, which is not set", "max_in_flight must be"):
        assert part in problems
