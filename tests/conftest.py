"""Shared fixtures: tiny checkpoints made once per session; tests never touch the hub."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from tests.tiny_models import write_tiny_gpt2  # noqa: E402


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


# ---------------------------------------------------------------------------------------------
# Discord tests: the real StoryBot with its real cogs, Service, Storage and Engine (tiny GPT-2),
# talking to the fake Discord server over loopback. Imports stay inside the fixtures so the
# other test modules never depend on the Discord front importing cleanly.
# ---------------------------------------------------------------------------------------------

# Edits, position refreshes and retries in milliseconds rather than seconds.
DISCORD_TEST_TIMING = {"edit_interval_s": 0.1, "position_interval_s": 0.1, "retry_delays_s": (0.05, 0.1, 0.2)}
# Short paragraphs keep every test quick; the seed makes them repeatable.
DISCORD_TEST_SETTINGS = {"max_new_tokens": 16, "min_new_tokens": 4, "seed": 7, "stop_at_paragraph": False}


@pytest.fixture(scope="session")
def tiny_gpt2_model(tiny_gpt2_dir: Path) -> Any:
    """The tiny GPT-2, loaded once through the project's own loader."""
    import torch

    from models.hf import load_hf_model

    return load_hf_model(str(tiny_gpt2_dir), torch.device("cpu"))


class ScriptedModel:
    """The tiny GPT-2 with a fixed text in front of what it writes, and optionally slow steps."""

    def __init__(self, inner: Any, prefix: str = "", step_delay_s: float = 0.0) -> None:
        self.inner, self.prefix, self.step_delay_s = inner, prefix, step_delay_s
        self.name, self.vocab_size, self.device = inner.name, inner.vocab_size, inner.device
        self.eos_token_ids, self.context_window = inner.eos_token_ids, inner.context_window
        self.ngram_free_tokens = inner.ngram_free_tokens
        self.sequence_breaker_tokens = inner.sequence_breaker_tokens
        self._faults: dict[str, list[BaseException]] = {}
        self.prompts: list[Any] = []  # every models.base.Prompt it was asked to encode, in order

    def fail_next(self, method: str, error: BaseException) -> None:
        """Make the next call of `method` ("decode" or "decode_text") raise `error`, once."""
        self._faults.setdefault(method, []).append(error)

    def _fault(self, method: str) -> None:
        if self._faults.get(method):
            raise self._faults[method].pop(0)

    def encode_prompt(self, prompt: Any, max_new_tokens: int) -> list[int]:
        self.prompts.append(prompt)
        return self.inner.encode_prompt(prompt, max_new_tokens)

    def decode_text(self, ids: list[int]) -> str:
        self._fault("decode_text")
        return self.prefix + self.inner.decode_text(ids)

    def new_batch(self) -> Any:
        return self.inner.new_batch()

    def prefill(self, batch: Any, prompts: list[list[int]]) -> Any:
        return self.inner.prefill(batch, prompts)

    def decode(self, batch: Any, tokens: Any) -> Any:
        time.sleep(self.step_delay_s)  # the worker thread's time, not the event loop's
        self._fault("decode")
        return self.inner.decode(batch, tokens)

    def keep(self, batch: Any, rows: list[int]) -> None:
        self.inner.keep(batch, rows)

    def beam_search(self, prompt_ids: list[int], params: Any) -> list[int]:
        return self.inner.beam_search(prompt_ids, params)


class DiscordRig:
    """Starts StoryBots against one fake Discord and one database, and acts as its users."""

    def __init__(self, fake: Any, model: Any, model_name: str, database: Path) -> None:
        self.fake, self.model, self.model_name, self.database = fake, model, model_name, database
        self.seed = fake.seed
        self.scripted: ScriptedModel | None = None  # the model the latest `services` run

    @contextlib.asynccontextmanager
    async def services(self, *, prefix: str = "", step_delay_s: float = 0.0, max_batch: int = 8,
                       max_waiting: int = 64, max_per_user: int = 4, cooldown_s: float = 0.0,
                       settings: dict[str, Any] | None = None, load_delay_s: float = 0.0,
                       remote: tuple[Any, ...] = (),
                       on_write: Callable[[float], None] | None = None,
                       access_file: Path | None = None, wall_clock: Callable[[], float] | None = None,
                       ) -> AsyncIterator[tuple[Any, Any]]:
        """(Service, Config) over a fresh engine and this rig's database, as __main__ makes them;
        `remote`: RemoteModels offered besides the tiny GPT-2; `access_file` and `wall_clock`
        (Unix seconds) are the access rules' file and clock."""
        from bot.access import AccessControl
        from bot.access_file import AccessFile
        from bot.config import Config
        from bot.engine.worker import Engine
        from bot.service import Service
        from bot.storage import Storage

        scripted = self.scripted = ScriptedModel(self.model, prefix, step_delay_s)

        def load(name: str) -> Any:
            time.sleep(load_delay_s)  # the loading thread's time: a model that takes a while
            if name != self.model_name:
                raise FileNotFoundError(f"no model called {name}")
            return scripted

        engine = Engine(load, self.model_name, max_batch=max_batch, max_waiting=max_waiting,
                        max_per_user=max_per_user, remote=remote)
        config = Config(discord_token=self.fake.token, database_path=self.database,
                        default_model=self.model_name, device="cpu", dev_guild_id=self.seed.guild.id,
                        max_batch=max_batch, max_queue=max_waiting, max_per_user=max_per_user,
                        log_level="INFO")
        async with await Storage.open(self.database, on_write=on_write) as storage, engine:
            engine.preload(self.model_name)
            await storage.update_settings("guild", self.seed.guild.id, settings or DISCORD_TEST_SETTINGS)
            access = AccessControl(storage, AccessFile(access_file), clock=wall_clock or time.time)
            yield Service(storage, engine, self.model_name, cooldown_s=cooldown_s, access=access,
                          extra_models=[model.name for model in remote]), config

    @contextlib.asynccontextmanager
    async def running(self, *, message_content: bool = True, timing: Any = None, gateway: Any = None,
                      **service_options: Any) -> AsyncIterator[Any]:
        """A logged-in StoryBot (commands synced to the seed guild) over fresh `services`."""
        from bot.discord.client import StoryBot
        from bot.discord.stream import StreamTiming
        from testing.fakediscord import FAST_CLIENT_OPTIONS, running_client

        class FastStoryBot(StoryBot):
            async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
                return None  # discord.py waits 5 s before every re-IDENTIFY; tests need not

        async with self.services(**service_options) as (service, config):
            bot = FastStoryBot(service, config, message_content=message_content, gateway=gateway,
                               timing=timing or StreamTiming(**DISCORD_TEST_TIMING), **FAST_CLIENT_OPTIONS)
            async with running_client(bot, self.fake.token):
                yield bot
                await self.settle()
        # Checked after every Discord test: nothing the bot sent or edited could ping anyone.
        unsafe = [c.summary() for c in self.payloads() if self.message_of(c).get("allowed_mentions") != {"parse": []}]
        assert not unsafe, f"message payloads without allowed_mentions none: {unsafe}"

    @staticmethod
    async def settle(timeout: float = 5.0) -> None:
        """Let commands and clicks still running (a thread being opened, say) finish first."""
        from bot.discord.client import HANDLER_TASKS

        busy = [t for t in asyncio.all_tasks() if t.get_name().startswith(HANDLER_TASKS) and not t.done()]
        if busy:
            await asyncio.wait(busy, timeout=timeout)

    async def slash(self, channel_id: int, user_id: int, name: str, options: dict[str, Any] | None = None,
                    subcommand: str | None = None) -> Any:
        return await self.fake.slash(self.seed.guild.id, channel_id, user_id, name, options, subcommand)

    async def menu(self, channel_id: int, user_id: int, name: str, message_id: int) -> Any:
        """A member picks `name` from the Apps menu of a message (a message context menu)."""
        return await self.fake.message_command(self.seed.guild.id, channel_id, user_id, name, message_id)

    async def click(self, channel_id: int, user_id: int, message_id: int, custom_id: str) -> Any:
        """A member clicks the message's button `custom_id` (CONTINUE_ID, say): its full id, with
        the story it carries, is read off the message, as a client would send it."""
        from testing.buttons import full_button_id

        full = full_button_id(self.fake.world.messages[message_id], custom_id)
        return await self.fake.click(self.seed.guild.id, channel_id, user_id, message_id, full)

    async def final(self, ix: Any, timeout: float = 10.0) -> Any:
        """The interaction's reply once it stopped changing: a finished paragraph or an answer."""
        return await ix.wait_until_original(is_final, timeout)

    async def private_answer(self, ix: Any, timeout: float = 10.0) -> Any:
        """The private reply to an interaction: its ephemeral original, or the ephemeral followup
        that replaced a public placeholder (a refusal after a public defer)."""
        def answered() -> Any:
            original = ix.original
            if original is not None and original.ephemeral and original.content and not original.deleted:
                return original
            return next((m for m in ix.followups if m.ephemeral), None)
        return await self.fake.wait_until(answered, timeout)

    async def outcome(self, ix: Any, timeout: float = 10.0) -> Any:
        """A finished paragraph in the reply, or the private answer that refused it."""
        def ended() -> Any:
            original = ix.original
            if original is not None and not original.deleted and is_final(original):
                return original
            return next((m for m in ix.followups if m.ephemeral), None)
        return await self.fake.wait_until(ended, timeout)

    async def final_in(self, channel_id: int, after: int = 0, timeout: float = 10.0) -> Any:
        """The first finished bot message in a channel or thread with an id above `after`."""
        return await self.fake.wait_for_message(
            channel_id, lambda m: m.author_id == self.fake.bot.id and is_final(m), after, timeout)

    def payloads(self) -> list[Any]:
        """Every REST call that created or edited a message (threads, defers and syncs excluded)."""
        def carries_message(call: Any) -> bool:
            if call.method not in ("POST", "PATCH") or not isinstance(call.json, dict):
                return False
            if "/interactions/" in call.path:
                return call.json.get("type") in (4, 7)
            return call.path.startswith("/webhooks/") or (
                call.path.startswith("/channels/") and "/messages" in call.path
                and not call.path.endswith("/threads"))
        return [c for c in self.fake.calls if carries_message(c)]

    @staticmethod
    def message_of(call: Any) -> dict[str, Any]:
        """The message a payload carries (an interaction callback wraps it in "data")."""
        return call.json.get("data") or {} if "/interactions/" in call.path else call.json

    @staticmethod
    async def until(check: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
        """Poll an async condition no fake-server event announces (the database, say)."""
        deadline = time.monotonic() + timeout
        while not (result := await check()) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert result, "condition not met in time"
        return result


def paragraph_of(content: str) -> str:
    """A final message's paragraph, without the footer line of facts under it."""
    head, _, last = content.rpartition("\n")
    return head.rstrip() if last.startswith("-# ") else content


def is_final(message: Any) -> bool:
    """No longer a placeholder, a queue position or a paragraph still being written."""
    from bot.discord.stream import LOADING, STARTING, WAITING
    from bot.limits import WRITING_MARKER

    content = message.content
    return bool(content) and not message.loading and not content.endswith(WRITING_MARKER) \
        and content not in (STARTING, LOADING) and not content.startswith(WAITING.split(":")[0])


@pytest_asyncio.fixture
async def rig(tiny_gpt2_model: Any, tiny_gpt2_dir: Path, tmp_path: Path) -> AsyncIterator[DiscordRig]:
    """A started, seeded fake Discord plus all a StoryBot needs; `rig.running()` starts one."""
    import torch

    from testing.fakediscord.fixtures import started_fake_discord

    # A 2-layer model gains nothing from more threads, and on busy cores they only spin.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        async with started_fake_discord() as fake:
            yield DiscordRig(fake, tiny_gpt2_model, str(tiny_gpt2_dir), tmp_path / "bot.db")
    finally:
        torch.set_num_threads(threads)


# The guild the `service` fixture's settings belong to, and its short paragraphs there.
GUILD = 1
SHORT = {"max_new_tokens": 12, "min_new_tokens": 2, "stop_at_paragraph": False}


@pytest_asyncio.fixture
async def service(tiny_gpt2_model: Any, tiny_gpt2_dir: Path, tmp_path: Path) -> AsyncIterator[Any]:
    """A Service as `bot.__main__` builds it, on a real SQLite file and a real engine; only the
    tiny GPT-2 loads (other names fall back). Paragraphs in GUILD are SHORT."""
    import torch

    from bot.engine.worker import Engine
    from bot.service import Service
    from bot.storage import Storage

    name = str(tiny_gpt2_dir)

    def load(model: str) -> Any:
        if model != name:
            raise FileNotFoundError(f"no model called {model}")
        return tiny_gpt2_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    engine = Engine(load, name, max_batch=8)
    try:
        async with await Storage.open(tmp_path / "bot.db") as storage, engine:
            engine.preload(name)
            await storage.update_settings("guild", GUILD, SHORT)
            yield Service(storage, engine, name, cooldown_s=0)
    finally:
        torch.set_num_threads(threads)
