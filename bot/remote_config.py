"""Remote models from the owner's TOML file (REMOTE_MODELS_FILE), checked once at start-up.

Each `[[model]]` table declares one named model (bot/engine/remote/spec.py says what each field
means); every problem is one line naming the model and the field. The API key is read from the
environment variable the file names, so the file itself holds no secret.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bot.engine.remote.spec import APIS, DIALECTS, RemoteModel, Secret

FIELDS = {"name", "urls", "url", "served_model", "dialect", "api", "api_key_env", "max_in_flight",
          "connect_timeout_s", "first_token_timeout_s", "stall_timeout_s", "context_tokens", "when_down"}
NUMBERS = {"max_in_flight": (1, 4096), "connect_timeout_s": (0.1, 600), "first_token_timeout_s": (0.1, 3600),
           "stall_timeout_s": (0.1, 3600), "context_tokens": (256, 10_000_000)}


def read_remote_models(path: Path, env: Mapping[str, str], problems: list[str]) -> tuple[RemoteModel, ...]:
    """The models `path` declares; each problem is appended to `problems` as one line."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        problems.append(f"REMOTE_MODELS_FILE {str(path)!r} cannot be read ({error.strerror})")
        return ()
    except tomllib.TOMLDecodeError as error:
        problems.append(f"REMOTE_MODELS_FILE {str(path)!r} is not valid TOML ({error})")
        return ()
    tables = data.get("model", [])
    if not isinstance(tables, list) or not tables:
        problems.append(f"REMOTE_MODELS_FILE {str(path)!r} declares no [[model]] table")
        return ()
    models = [model for index, table in enumerate(tables)
              if (model := remote_model(table, index, env, problems)) is not None]
    names = [model.name for model in models]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"remote model {name!r} is declared twice")
    return tuple(models)


def remote_model(table: Any, index: int, env: Mapping[str, str], problems: list[str]) -> RemoteModel | None:
    """One `[[model]]` table as a RemoteModel, or None (with its problems noted)."""
    if not isinstance(table, dict):
        problems.append(f"remote model #{index + 1} must be a table")
        return None
    name = str(table.get("name", "")).strip()
    label = f"remote model {name!r}" if name else f"remote model #{index + 1}"
    before = len(problems)
    for unknown in sorted(set(table) - FIELDS):
        problems.append(f"{label}: unknown field {unknown!r}")
    if not name or any(ch.isspace() for ch in name):
        problems.append(f"{label}: name must be one word members can type")
    urls = table.get("urls", [table["url"]] if "url" in table else [])
    if not isinstance(urls, list) or not urls or not all(_is_http_url(u) for u in urls):
        problems.append(f"{label}: urls must be a list of http(s) base URLs, e.g. [\"http://127.0.0.1:8000/v1\"]")
    served = str(table.get("served_model", "")).strip()
    if not served:
        problems.append(f"{label}: served_model is missing (the model id the server knows)")
    choices = {"dialect": DIALECTS, "api": APIS, "when_down": ("fail", "default")}
    for key, allowed in choices.items():
        if key in table and table[key] not in allowed:
            problems.append(f"{label}: {key} must be one of {', '.join(allowed)}, got {table[key]!r}")
    for key, (low, high) in NUMBERS.items():
        value = table.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not low <= value <= high):
            problems.append(f"{label}: {key} must be a number from {low} to {high}, got {value!r}")
    key_env = str(table.get("api_key_env", "")).strip()
    if key_env and not env.get(key_env, "").strip():
        problems.append(f"{label}: api_key_env names {key_env}, which is not set")
    if len(problems) > before:
        return None
    options = {k: table[k] for k in ("dialect", "api", "when_down", *NUMBERS) if k in table}
    return RemoteModel(name=name, urls=tuple(u.rstrip("/") for u in urls), served_model=served,
                       api_key=Secret(env.get(key_env, "").strip() if key_env else ""), api_key_env=key_env,
                       **options)


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)
