"""`python -m bot`: validate config, open the database and the engine, then run Discord or the console.

SIGTERM or Ctrl-C shuts down gently (see bot.shutdown): the front finishes or cuts what it is
writing, with a message, and returns; then the engine stops and the database is checkpointed
and closed, so a restart finds no WAL to recover.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from bot.access import AccessControl
from bot.access_file import AccessFile
from bot.config import Config, ConfigError, load_config
from bot.engine.worker import Engine
from bot.service import Service
from bot.shutdown import stop_on_signals
from bot.storage import Storage
from bot.storage.retention import retention
from models.hf import pick_device
from models.registry import load_model

log = logging.getLogger("bot")


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "httpx", "huggingface_hub", "discord.gateway"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def run(config: Config) -> None:
    device = pick_device(config.device)
    engine = Engine(lambda name: load_model(name, device), config.default_model,
                    max_batch=config.max_batch, max_waiting=config.max_queue,
                    max_per_user=config.max_per_user, device=str(device))
    stop = asyncio.Event()
    with stop_on_signals(stop):  # from here on, SIGTERM and Ctrl-C end in a clean close below
        async with (await Storage.open(config.database_path) as storage, engine,
                    retention(storage, config.retention_days)):
            engine.preload(config.default_model)  # in the background: start-up never waits for it
            await run_front(config, storage, engine, stop)
    log.info("engine stopped and database closed")


async def run_front(config: Config, storage: Storage, engine: Engine, stop: asyncio.Event) -> None:
    """Discord with a token, else the offline console; either returns once `stop` is handled."""
    if config.discord_token:
        from bot.discord.client import run_discord

        access = AccessControl(storage, AccessFile(config.access_file))
        service = Service(storage, engine, config.default_model, extra_models=config.allowed_models, access=access)
        await run_discord(config, service, stop)
    else:
        from bot.console import Console

        log.info("no DISCORD_TOKEN set: starting the offline console")
        service = Service(storage, engine, config.default_model, cooldown_s=0,
                          extra_models=config.allowed_models)
        await Console(service, grace_s=config.shutdown_grace_s).run(stop=stop)


def main() -> int:
    try:
        config = load_config()
    except ConfigError as error:
        for problem in error.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    try:
        asyncio.run(run(config))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
