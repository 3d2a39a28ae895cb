"""Load over the wire: many /write at once, the real bot and model against the fake Discord.

    python -m bench.load [--requests 500] [--seconds 60] [--channels 50] [--users 100]
                         [--model smollm2] [--device auto] [--drain 600]

The project's fake Discord server (testing/fakediscord) runs on its own event loop in a thread,
as Discord runs elsewhere; the real StoryBot, Service, Storage (a temporary database) and Engine
run on the main loop, wired as `python -m bot` wires them, with the production stream timing.
The /write commands are spread evenly over `--seconds`, round-robin over channels and users.
Then it waits (at most `--drain` seconds) for every reply to settle, shuts the bot down the way
SIGTERM does, and reports:

- deferred within 3 s: the "thinking..." reached Discord within its deadline (target 100 %);
- answered: the reply ended as a paragraph or a clear busy message (target 100 %);
- event-loop lag p99 of the bot's loop: how late a 10 ms sleep wakes up (target <= 100 ms);
- peak memory: resident set of the whole process (bot, model and fake server);
- error-log lines: records at ERROR or above, from any logger (target 0).

Every wait is bounded, so it always ends. The last line is machine-readable; the exit status
is 0 when every target is met, else 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.engine import RssSampler
from bot.config import Config
from bot.discord.client import StoryBot
from bot.discord.stream import STARTING, WAITING
from bot.discord.views import CONTINUE_ID, REGENERATE_ID
from bot.engine.metrics import percentile
from bot.engine.worker import Engine
from bot.limits import DEFAULT_MAX_BATCH, DEFER_DEADLINE_S, SHUTDOWN_GRACE_S, WRITING_MARKER
from bot.service import Service
from bot.storage import Storage
from models.hf import pick_device
from models.registry import load_model
from testing.buttons import button_ids
from testing.fakediscord import FakeDiscord, FakeInteraction, FakeMessage, running_client
from testing.fakediscord.client import FAST_CLIENT_OPTIONS
from testing.fakediscord.fixtures import started_fake_discord

TOPICS = ["a lighthouse keeper", "the history of bread", "a storm at sea", "a city garden", "an old clock",
          "a night train", "the first snow", "a forgotten library", "a beekeeper", "a mountain village"]
BUSY_PREFIXES = ("Sorry: I'm busy", "Sorry: slow down")  # the queue is full, or this user's limit
LAG_SLEEP_S = 0.01  # the lag probe's sleep; lateness beyond it is loop lag
POLL_S = 0.25  # how often the replies are looked at while waiting for them to settle
LAG_TARGET_MS = 100.0
CONNECT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Shot:
    """One /write: when (seconds after the start), where and by whom."""

    at: float
    channel_id: int
    user_id: int
    topic: str


@dataclass(frozen=True)
class Outcome:
    """What became of one /write."""

    deferred_s: float | None  # from the command to the "thinking..." callback; None: never
    kind: str  # "paragraph", "busy" or "unanswered"
    answer_s: float | None  # from the command to its settled reply, within POLL_S
    content: str


class FakeDiscordThread:
    """The fake Discord on its own event loop in a daemon thread, as Discord runs elsewhere:
    its work is not counted as the bot's event-loop lag."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fake-discord", daemon=True)
        self._context = started_fake_discord()
        self.fake: FakeDiscord

    async def run(self, coroutine: Any) -> Any:
        """Run a coroutine on the fake's loop and wait for it from the caller's."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    async def __aenter__(self) -> FakeDiscordThread:
        self._thread.start()
        self.fake = await self.run(self._context.__aenter__())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.run(self._context.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class ErrorCounter(logging.Handler):
    """Counts log records at ERROR or above, keeping the first few to show."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}"[:300])


class LagProbe:
    """Samples how late the bot's loop wakes from a short sleep, for as long as it runs."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._probe(), name="lag-probe")

    async def _probe(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(LAG_SLEEP_S)
            self.lags_ms.append(1000 * (time.perf_counter() - before - LAG_SLEEP_S))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


# -- the users' side (runs on the fake's loop) ------------------------------------------------

def plan(requests: int, seconds: float, channels: list[int], users: list[int]) -> list[Shot]:
    """Evenly spaced /write commands, round-robin over channels and users."""
    step = seconds / max(1, requests)
    return [Shot(i * step, channels[i % len(channels)], users[i % len(users)], TOPICS[i % len(TOPICS)])
            for i in range(requests)]


async def populate(fake: FakeDiscord, channels: int, users: int) -> tuple[list[int], list[int]]:
    guild = fake.seed.guild.id
    channel_ids = [fake.seed.general.id, fake.seed.second.id]
    channel_ids += [fake.add_text_channel(guild, f"room-{i}").id for i in range(max(0, channels - 2))]
    user_ids = [fake.add_user(f"writer-{i}").id for i in range(users)]
    for user in user_ids:
        fake.add_member(guild, user)
    return channel_ids[:channels], user_ids


async def fire(fake: FakeDiscord, shots: list[Shot]) -> list[tuple[float, FakeInteraction]]:
    """Send each /write at its time; returns (monotonic time sent, interaction) pairs."""
    loop = asyncio.get_running_loop()
    start, sent = loop.time(), []
    for shot in shots:
        await asyncio.sleep(max(0.0, start + shot.at - loop.time()))
        asked = time.monotonic()
        ix = await fake.slash(fake.seed.guild.id, shot.channel_id, shot.user_id, "write", {"topic": shot.topic})
        sent.append((asked, ix))
    return sent


def settled(message: FakeMessage | None) -> bool:
    """No longer a placeholder, a queue position or a paragraph still being written."""
    if message is None or not message.content or message.loading:
        return False
    content = message.content
    return not content.endswith(WRITING_MARKER) and content != STARTING \
        and not content.startswith(WAITING.split(":")[0])


async def wait_for_replies(sent: list[tuple[float, FakeInteraction]], drain_s: float) -> dict[int, float]:
    """Seconds from each command to its settled reply, for those that settled within `drain_s`."""
    answered: dict[int, float] = {}
    deadline = time.monotonic() + drain_s
    while len(answered) < len(sent) and time.monotonic() < deadline:
        for asked, ix in sent:
            if ix.id not in answered and settled(ix.original):
                answered[ix.id] = time.monotonic() - asked
        await asyncio.sleep(POLL_S)
    return answered


def outcome(fake: FakeDiscord, asked: float, ix: FakeInteraction, answer_s: float | None) -> Outcome:
    callbacks = fake.interaction_responses(ix.id)
    deferred = callbacks[0].time - asked if callbacks and callbacks[0].json == {"type": 5} else None
    message = ix.original
    content = message.content if message is not None else ""
    buttons = button_ids(message) if message else []
    if answer_s is not None and buttons == [CONTINUE_ID, REGENERATE_ID] and not content.startswith("Sorry"):
        kind = "paragraph"
    elif answer_s is not None and content.startswith(BUSY_PREFIXES):
        kind = "busy"
    else:
        kind = "unanswered"
    return Outcome(deferred, kind, answer_s, content)


async def users(fake: FakeDiscord, args: argparse.Namespace, channels: list[int],
                user_ids: list[int]) -> list[Outcome]:
    """Everything the users do and see: fire the commands, wait for the replies, read them."""
    sent = await fire(fake, plan(args.requests, args.seconds, channels, user_ids))
    answered = await wait_for_replies(sent, args.drain)
    return [outcome(fake, asked, ix, answered.get(ix.id)) for asked, ix in sent]


# -- the bot's side (runs on the main loop) ---------------------------------------------------

async def run_load(args: argparse.Namespace, errors: ErrorCounter) -> dict[str, Any]:
    device = pick_device(args.device)
    began = time.perf_counter()
    model = await asyncio.to_thread(load_model, args.model, device)  # failures stop here, loudly
    print(f"model {args.model} on {device} loaded in {time.perf_counter() - began:.1f} s", flush=True)
    engine = Engine(lambda name: model if name == args.model else load_model(name, device), args.model,
                    max_batch=args.max_batch, max_waiting=args.max_queue, max_per_user=args.max_per_user,
                    device=str(device))
    with tempfile.TemporaryDirectory(prefix="storybot-load-") as folder:
        async with FakeDiscordThread() as discord_side:
            fake = discord_side.fake
            channels, user_ids = await discord_side.run(populate(fake, args.channels, args.users))
            config = Config(discord_token=fake.token, database_path=Path(folder) / "bot.db",
                            default_model=args.model, device=args.device, dev_guild_id=fake.seed.guild.id,
                            max_batch=args.max_batch, max_queue=args.max_queue, max_per_user=args.max_per_user,
                            log_level="WARNING")
            async with await Storage.open(config.database_path) as storage, engine:
                engine.preload(args.model)
                bot = StoryBot(Service(storage, engine, args.model), config, **FAST_CLIENT_OPTIONS)
                async with running_client(bot, fake.token, timeout=CONNECT_TIMEOUT_S):
                    figures = await measure(discord_side, args, channels, user_ids)
                    await bot.shut_down(SHUTDOWN_GRACE_S)
    figures["error_lines"] = list(errors.lines)
    return figures


async def measure(discord_side: FakeDiscordThread, args: argparse.Namespace, channels: list[int],
                  user_ids: list[int]) -> dict[str, Any]:
    probe, rss = LagProbe(), RssSampler()
    probe.start()
    rss.start()
    started = time.perf_counter()
    outcomes = await discord_side.run(users(discord_side.fake, args, channels, user_ids))
    elapsed = time.perf_counter() - started
    probe.stop()
    rss.stop()
    return {"outcomes": outcomes, "lags_ms": probe.lags_ms, "peak_rss_mb": rss.peak_mb, "elapsed_s": elapsed}


# -- the report -------------------------------------------------------------------------------

def report(args: argparse.Namespace, figures: dict[str, Any]) -> bool:
    """Print the figures and the machine-readable line; True when every target is met."""
    outcomes: list[Outcome] = figures["outcomes"]
    total = max(1, len(outcomes))
    on_time = sum(1 for o in outcomes if o.deferred_s is not None and o.deferred_s < DEFER_DEADLINE_S)
    kinds = {kind: sum(1 for o in outcomes if o.kind == kind) for kind in ("paragraph", "busy", "unanswered")}
    answered = kinds["paragraph"] + kinds["busy"]
    defers = [o.deferred_s for o in outcomes if o.deferred_s is not None]
    answers = [o.answer_s for o in outcomes if o.answer_s is not None and o.kind == "paragraph"]
    lag_p99 = percentile(figures["lags_ms"], 0.99) or 0.0
    errors = figures["error_lines"]
    checks = {"deferred": on_time == len(outcomes), "answered": answered == len(outcomes),
              "lag": lag_p99 <= LAG_TARGET_MS, "errors": not errors}
    mark = {True: "ok", False: "MISSED"}
    print(f"deferred within {DEFER_DEADLINE_S:.0f} s: {on_time}/{len(outcomes)} ({100 * on_time / total:.1f} %), "
          f"slowest {max(defers, default=0.0):.2f} s  [target 100 %] {mark[checks['deferred']]}")
    print(f"answered: {answered}/{len(outcomes)} ({100 * answered / total:.1f} %): {kinds['paragraph']} "
          f"paragraphs, {kinds['busy']} busy, {kinds['unanswered']} unanswered  [target 100 %] "
          f"{mark[checks['answered']]}")
    for missed in [o for o in outcomes if o.kind == "unanswered"][:3]:
        print(f"  unanswered, e.g.: {missed.content[:120]!r}")
    print(f"paragraph reply time p50 {percentile(answers, 0.5) or 0.0:.1f} s, "
          f"p99 {percentile(answers, 0.99) or 0.0:.1f} s")
    print(f"event-loop lag p99 {lag_p99:.1f} ms, max {max(figures['lags_ms'], default=0.0):.1f} ms "
          f"({len(figures['lags_ms'])} samples)  [target <= {LAG_TARGET_MS:.0f} ms] {mark[checks['lag']]}")
    print(f"peak memory: {figures['peak_rss_mb']:.0f} MiB RSS while loaded; process peak "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"error-log lines: {len(errors)}  [target 0] {mark[checks['errors']]}")
    for line in errors[:5]:
        print(f"  {line}")
    print(f"requests={len(outcomes)} seconds={args.seconds:g} channels={args.channels} users={args.users} "
          f"model={args.model} elapsed_s={figures['elapsed_s']:.1f} "
          f"deferred_3s_pct={100 * on_time / total:.1f} answered_pct={100 * answered / total:.1f} "
          f"paragraphs={kinds['paragraph']} busy={kinds['busy']} unanswered={kinds['unanswered']} "
          f"loop_lag_p99_ms={lag_p99:.1f} peak_rss_mb={figures['peak_rss_mb']:.0f} "
          f"error_lines={len(errors)} pass={int(all(checks.values()))}")
    return all(checks.values())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500, help="/write commands (default 500)")
    parser.add_argument("--seconds", type=float, default=60.0, help="spread over this long (default 60)")
    parser.add_argument("--channels", type=int, default=50, help="channels they come from (default 50)")
    parser.add_argument("--users", type=int, default=100, help="members sending them (default 100)")
    parser.add_argument("--model", default="smollm2", help="smollm2, lstm, markov, a hub id or a folder")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, help=f"MAX_BATCH (default {DEFAULT_MAX_BATCH})")
    parser.add_argument("--max-queue", type=int, default=256, help="MAX_QUEUE (default 256)")
    parser.add_argument("--max-per-user", type=int, default=2, help="MAX_PER_USER (default 2)")
    parser.add_argument("--drain", type=float, default=600.0,
                        help="after the last command, wait at most this long for replies (default 600)")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    errors = ErrorCounter()
    logging.getLogger().addHandler(errors)
    print(f"load: {args.requests} /write over {args.seconds:g} s from {args.channels} channels and "
          f"{args.users} users, model {args.model}", flush=True)
    figures = asyncio.run(run_load(args, errors))
    sys.exit(0 if report(args, figures) else 1)


if __name__ == "__main__":
    main()
