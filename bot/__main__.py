"""`python -m bot`: validate config, open the database and the engine, then run Discord or the console.

SIGTERM or Ctrl-C shuts down gently (see bot.shutdown): the front finishes or cuts what it is
writing, with a message, and returns; then the engine stops and the database is checkpointed
and closed, so a restart finds no WAL to recover.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import AsyncExitStack

from bot.access import AccessControl
from bot.access_file import AccessFile
from bot.config import Config, ConfigError, load_config
from bot.engine.worker import Engine
from bot.ops.backups import BackupPlan, backups
from bot.ops.health import HealthChecks, database_check, discord_check, model_check
from bot.ops.logs import configure_logging
from bot.ops.metrics import BotMetrics
from bot.ops.server import ops_server
from bot.service import Service
from bot.shutdown import stop_on_signals
from bot.storage import Storage
from bot.storage.retention import retention
from models.hf import pick_device
from models.registry import load_model

log = logging.getLogger("bot")


async def run(config: Config) -> None:
    device = pick_device(config.device)
    engine = Engine(lambda name: load_model(name, device), config.default_model,
                    max_batch=config.max_batch, max_waiting=config.max_queue,
                    max_per_user=config.max_per_user, device=str(device), remote=config.remote_models)
    metrics = BotMetrics()
    metrics.watch_engine(engine)
    stop = asyncio.Event()
    with stop_on_signals(stop):  # from here on, SIGTERM and Ctrl-C end in a clean close below
        async with AsyncExitStack() as stack:
            storage = await stack.enter_async_context(
                await Storage.open(config.database_path, on_write=metrics.observe_db_write))
            await stack.enter_async_context(engine)
            await stack.enter_async_context(retention(storage, config.retention_days))
            await stack.enter_async_context(backups(backup_plan(config)))
            await stack.enter_async_context(ops_server(metrics, health_checks(config, storage, engine, metrics),
                                                       config.metrics_host, config.metrics_port))
            engine.preload(config.default_model)  # in the background: start-up never waits for it
            await run_front(config, storage, engine, stop, metrics)
    log.info("engine stopped and database closed")


def backup_plan(config: Config) -> BackupPlan | None:
    if config.backup_hours <= 0:
        return None
    return BackupPlan(config.database_path, config.backup_dir, config.backup_hours * 3600, config.backup_keep)


def health_checks(config: Config, storage: Storage, engine: Engine, metrics: BotMetrics) -> HealthChecks:
    """Ready: Discord connected (when there is a token), the default model loaded, writes taken."""
    checks = [model_check(engine, config.default_model), database_check(storage)]
    if config.discord_token:
        checks.insert(0, discord_check(metrics.gateway))
    return HealthChecks(checks)


async def run_front(config: Config, storage: Storage, engine: Engine, stop: asyncio.Event,
                    metrics: BotMetrics) -> None:
    """Discord with a token, else the offline console; either returns once `stop` is handled."""
    if config.discord_token:
        from bot.discord.client import run_discord

        access = AccessControl(storage, AccessFile(config.access_file))
        service = Service(storage, engine, config.default_model, extra_models=offered(config), access=access)
        await run_discord(config, service, stop, gateway=metrics.gateway)
    else:
        from bot.console import Console

        log.info("no DISCORD_TOKEN set: starting the offline console")
        if config.log_level == "INFO":  # the default: keep the paragraphs on the terminal whole
            quiet_request_lines()
        service = Service(storage, engine, config.default_model, cooldown_s=0,
                          extra_models=offered(config))
        await Console(service, grace_s=config.shutdown_grace_s).run(stop=stop)


# Loggers with a line per request (queued, done): an operator's log wants them, but in the console
# they would land in the middle of the paragraph being printed on the same terminal.
REQUEST_LOGGERS = ("bot.service", "bot.engine.worker")


def quiet_request_lines() -> None:
    """Console only: the per-request INFO lines are left out (LOG_LEVEL=DEBUG shows them)."""
    for name in REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def offered(config: Config) -> tuple[str, ...]:
    """The models members may choose besides the built-in ones: ALLOWED_MODELS and the remote ones."""
    return (*config.allowed_models, *(model.name for model in config.remote_models))


def main() -> int:
    try:
        config = load_config()
    except ConfigError as error:
        for problem in error.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return 2
    configure_logging(config.log_level, config.log_format,
                      secrets=[config.discord_token] if config.discord_token else [])
    try:
        asyncio.run(run(config))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
