"""Configuration from the environment and `.env`, validated once at start-up.

Every problem is reported on its own line; the token itself is never printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bot.access_file import AccessFile, AccessFileError
from bot.engine.remote.spec import RemoteModel
from bot.limits import DEFAULT_MAX_BATCH, SHUTDOWN_GRACE_S
from bot.ops.logs import LOG_FORMATS
from bot.remote_config import read_remote_models
from models.embedded import EMBEDDED_NAME

DEVICES = ("auto", "cpu", "cuda")


class ConfigError(Exception):
    """Invalid configuration; `problems` holds one readable line per bad or missing value."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Config:
    """Process settings (per-channel generation settings live in the database)."""

    discord_token: str | None
    database_path: Path
    default_model: str
    device: str
    dev_guild_id: int | None
    max_batch: int
    max_queue: int
    max_per_user: int
    log_level: str
    shutdown_grace_s: int = SHUTDOWN_GRACE_S
    """On SIGTERM or Ctrl-C, how long running paragraphs may take to finish before they are cut."""
    retention_days: int = 0
    """Story history older than this many days is deleted; 0 keeps it forever."""
    allowed_models: tuple[str, ...] = ()
    """Models members may choose besides the built-in ones and the default (hub ids, folders)."""
    remote_models: tuple[RemoteModel, ...] = ()
    """Models served by OpenAI-compatible servers (REMOTE_MODELS_FILE); offered like allowed_models."""
    shard_count: int | None = None
    """Gateway shards in all (SHARD_COUNT); None: as many as Discord recommends."""
    shard_ids: tuple[int, ...] = ()
    """The shards this process runs (SHARD_IDS); empty: all of them."""
    log_format: str = "text"
    """"text" lines, or "json": one JSON object per line, with request ids."""
    metrics_port: int | None = None
    """Port of /metrics (Prometheus) and /healthz; None: no server."""
    metrics_host: str = "127.0.0.1"
    """Address the metrics server listens on; loopback unless the owner says otherwise."""
    backup_hours: float = 0.0
    """An online backup of the database every this many hours; 0: none."""
    backup_dir: Path = Path("data/backups")
    backup_keep: int = 7
    """Backups kept in `backup_dir`; older ones are deleted."""
    access_file: Path | None = None
    """The owner's access rules and daily token budgets (TOML, bot/access_file.py), read again
    whenever the file changes; None or a missing file: no rules."""

    def __repr__(self) -> str:  # never let the token reach a log line
        token = "set" if self.discord_token else "unset"
        return (f"Config(discord_token=<{token}>, database_path={str(self.database_path)!r}, "
                f"default_model={self.default_model!r}, device={self.device!r}, "
                f"dev_guild_id={self.dev_guild_id}, max_batch={self.max_batch}, "
                f"max_queue={self.max_queue}, max_per_user={self.max_per_user}, "
                f"shutdown_grace_s={self.shutdown_grace_s}, retention_days={self.retention_days}, "
                f"allowed_models={self.allowed_models}, "
                f"remote_models={tuple(m.name for m in self.remote_models)}, "
                f"shard_count={self.shard_count}, shard_ids={self.shard_ids}, log_format={self.log_format!r}, "
                f"metrics_port={self.metrics_port}, metrics_host={self.metrics_host!r}, "
                f"backup_hours={self.backup_hours:g}, backup_dir={str(self.backup_dir)!r}, "
                f"backup_keep={self.backup_keep}, access_file={self.access_file})")

    __str__ = __repr__


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments, blank lines and `export ` allowed)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def number(key: str, default: float, low: float, high: float, env: dict[str, str], problems: list[str]) -> float:
    """A decimal value of `env`, checked against its range; a problem is noted, not raised."""
    text = env.get(key, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        problems.append(f"{key} must be a number, got {text!r}")
        return default
    if not low <= value <= high:
        problems.append(f"{key} must be between {low:g} and {high:g}, got {value:g}")
        return default
    return value


def load_config(environ: dict[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Config:
    """Build the Config from `.env` overlaid by the environment; raise ConfigError listing problems."""
    env = read_dotenv(dotenv) if dotenv else {}
    env.update(os.environ if environ is None else environ)
    problems: list[str] = []

    def integer(key: str, default: int | None, low: int, high: int) -> int | None:
        text = env.get(key, "").strip()
        if not text:
            return default
        try:
            value = int(text)
        except ValueError:
            problems.append(f"{key} must be a whole number, got {text!r}")
            return default
        if not low <= value <= high:
            problems.append(f"{key} must be between {low} and {high}, got {value}")
        return value

    token = env.get("DISCORD_TOKEN", "").strip() or None
    if token is not None and (len(token) < 50 or any(ch.isspace() for ch in token)):
        problems.append("DISCORD_TOKEN does not look like a bot token (copy it again from the "
                        "Developer Portal, Bot page)")
    device = env.get("DEVICE", "auto").strip().lower() or "auto"
    if device not in DEVICES:
        problems.append(f"DEVICE must be one of {', '.join(DEVICES)}, got {device!r}")
    level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    shard_count = integer("SHARD_COUNT", None, 1, 100_000)
    shard_ids = shard_list(env.get("SHARD_IDS", ""), shard_count, problems)
    remote_file = env.get("REMOTE_MODELS_FILE", "").strip()
    remote = read_remote_models(Path(remote_file), env, problems) if remote_file else ()
    log_format = env.get("LOG_FORMAT", "text").strip().lower() or "text"
    if log_format not in LOG_FORMATS:
        problems.append(f"LOG_FORMAT must be {' or '.join(LOG_FORMATS)}, got {log_format!r}")
    backup_hours = number("BACKUP_HOURS", 0.0, 0.0, 24.0 * 365, env, problems)
    config = Config(
        discord_token=token,
        database_path=Path(env.get("DATABASE_PATH", "").strip() or "data/bot.db"),
        default_model=env.get("DEFAULT_MODEL", "").strip() or EMBEDDED_NAME,
        device=device,
        dev_guild_id=integer("DEV_GUILD_ID", None, 1, 2**64 - 1),
        max_batch=integer("MAX_BATCH", DEFAULT_MAX_BATCH, 1, 512) or DEFAULT_MAX_BATCH,
        max_queue=integer("MAX_QUEUE", 256, 1, 100_000) or 256,
        max_per_user=integer("MAX_PER_USER", 2, 1, 100) or 2,
        log_level=level,
        shutdown_grace_s=integer("SHUTDOWN_GRACE_S", SHUTDOWN_GRACE_S, 0, 600) or 0,
        retention_days=integer("RETENTION_DAYS", 0, 0, 36_500) or 0,
        allowed_models=tuple(name.strip() for name in env.get("ALLOWED_MODELS", "").split(",") if name.strip()),
        remote_models=remote,
        shard_count=shard_count,
        shard_ids=shard_ids,
        log_format=log_format,
        metrics_port=integer("METRICS_PORT", None, 1, 65_535),
        metrics_host=env.get("METRICS_HOST", "").strip() or "127.0.0.1",
        backup_hours=backup_hours,
        backup_dir=Path(env.get("BACKUP_DIR", "").strip() or "data/backups"),
        backup_keep=integer("BACKUP_KEEP", 7, 1, 10_000) or 7,
        access_file=Path(env.get("ACCESS_FILE", "").strip() or "access.toml"),
    )
    if config.access_file is not None:
        try:
            AccessFile(config.access_file).load()  # a broken file stops start-up, as any bad value
        except (AccessFileError, OSError) as error:
            problems.append(f"ACCESS_FILE: {error}")
    if problems:
        raise ConfigError(problems)
    return config


def shard_list(text: str, shard_count: int | None, problems: list[str]) -> tuple[int, ...]:
    """SHARD_IDS as numbers, each below SHARD_COUNT (which it needs)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        return ()
    if shard_count is None:
        problems.append("SHARD_IDS needs SHARD_COUNT (the number of shards over all processes)")
        return ()
    if not all(part.isdigit() and int(part) < shard_count for part in parts):
        problems.append(f"SHARD_IDS must be shard numbers from 0 to {shard_count - 1}, got {text.strip()!r}")
        return ()
    return tuple(int(part) for part in parts)
