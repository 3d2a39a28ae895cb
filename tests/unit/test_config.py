"""Configuration: defaults, .env, one line per problem, exit status 2, no token in output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GAbCdE.secret-token-value-abcdefghijklmnopqrstuvwx"


def test_defaults_need_nothing(tmp_path: Path) -> None:
    config = load_config({}, dotenv=tmp_path / "missing.env")
    assert config.discord_token is None and config.default_model == "smollm2"
    assert config.database_path == Path("data/bot.db")


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\nDEFAULT_MODEL=lstm\nMAX_BATCH='16'\nexport DEVICE=cpu\n")
    config = load_config({"MAX_BATCH": "8"}, dotenv=dotenv)
    assert (config.default_model, config.max_batch, config.device) == ("lstm", 8, "cpu")


def test_allowed_models_are_a_comma_separated_list(tmp_path: Path) -> None:
    config = load_config({"ALLOWED_MODELS": " gpt2, ./finetuned ,,"}, dotenv=tmp_path / "missing.env")
    assert config.allowed_models == ("gpt2", "./finetuned")
    assert load_config({}, dotenv=tmp_path / "missing.env").allowed_models == ()


def test_every_problem_is_listed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_config({"DEVICE": "tpu", "MAX_BATCH": "lots", "DEV_GUILD_ID": "-1"}, dotenv=None)
    assert len(error.value.problems) == 3
    assert any("DEVICE" in p for p in error.value.problems)


def test_repr_never_shows_the_token() -> None:
    config = load_config({"DISCORD_TOKEN": TOKEN}, dotenv=None)
    assert TOKEN not in repr(config) and TOKEN not in str(config)


def test_bad_config_exits_2_with_one_line_per_problem_and_no_token(tmp_path: Path) -> None:
    bad_token = "short secret"
    result = subprocess.run([sys.executable, "-m", "bot"], capture_output=True, text=True, cwd=Path.cwd(),
                            env={"DISCORD_TOKEN": bad_token, "MAX_QUEUE": "0", "PATH": "/usr/bin:/bin",
                                 "DATABASE_PATH": str(tmp_path / "x.db")}, timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("config error:")]
    assert len(lines) == 2
    assert bad_token not in result.stderr + result.stdout


def test_a_broken_access_file_stops_start_up_with_the_problem_named(tmp_path: Path) -> None:
    rules = tmp_path / "access.toml"
    rules.write_text("[default]\nblocked_roles = ['moderators']\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config({"ACCESS_FILE": str(rules)}, dotenv=None)
    (problem,) = error.value.problems
    assert problem.startswith("ACCESS_FILE: ") and "blocked_roles must be a list of Discord ids" in problem
    assert load_config({"ACCESS_FILE": str(tmp_path / "none.toml")}, dotenv=None).access_file == tmp_path / "none.toml"
