"""The layout's rules hold for the project's source, and the checker catches each kind of break."""

from __future__ import annotations

from pathlib import Path

from testing.import_rules import check

ROOT = Path(__file__).resolve().parents[2]


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in {"bot/__init__.py": "", "cogs/__init__.py": "", "models/__init__.py": "",
                           **files}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_project_keeps_its_import_rules() -> None:
    assert check(ROOT) == []


def test_a_clean_tree_breaks_no_rule(tmp_path: Path) -> None:
    tree = write_tree(tmp_path, {
        "bot/discord/__init__.py": "import discord\n",
        "bot/engine/worker.py": "import torch\nfrom bot.engine import requests\n",
        "bot/engine/requests.py": "from models import base\n",
        "cogs/write.py": "from discord import app_commands\nfrom bot.discord import client\n",
        "models/base.py": "import torch.nn\n",
    })
    assert check(tree) == []


def test_discord_outside_the_discord_layer_is_refused(tmp_path: Path) -> None:
    tree = write_tree(tmp_path, {"bot/service.py": "from discord.ext import commands\n"})
    assert check(tree) == ["bot/service.py:1 imports discord; only bot/discord/ and cogs/ may"]


def test_torch_outside_the_engine_and_models_is_refused(tmp_path: Path) -> None:
    tree = write_tree(tmp_path, {"bot/discord/stream.py": "def f():\n    import torch\n"})
    assert check(tree) == ["bot/discord/stream.py:2 imports torch; only bot/engine/ and models/ may"]


def test_models_importing_the_bot_is_refused(tmp_path: Path) -> None:
    tree = write_tree(tmp_path, {"bot/limits.py": "", "models/hf.py": "from bot.limits import X\n"})
    assert check(tree) == ["models/hf.py:1 imports bot.limits; models/ must not import bot/"]


def test_a_cycle_hidden_under_type_checking_is_still_a_cycle(tmp_path: Path) -> None:
    tree = write_tree(tmp_path, {
        "bot/engine/__init__.py": "",
        "bot/engine/worker.py": "from bot.engine.requests import Handle\n",
        "bot/engine/requests.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                   "    from bot.engine.worker import Engine\n"),
    })
    assert check(tree) == ["import cycle: bot.engine.requests -> bot.engine.worker -> bot.engine.requests"]


def test_a_relative_import_cycle_is_found(tmp_path: Path) -> None:
    tree = write_tree(tmp_path, {
        "bot/a.py": "from . import b\n",
        "bot/b.py": "from .c import thing\n",
        "bot/c.py": "from .a import other\n",
    })
    assert check(tree) == ["import cycle: bot.a -> bot.b -> bot.c -> bot.a"]
