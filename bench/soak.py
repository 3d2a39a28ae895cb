"""Soak: the real bot and model for a long while against the fake Discord. Does anything grow?

    python -m bench.soak [--minutes 30] [--model smollm2] [--interval 2] [--warmup 5]
                         [--checkpoint-minutes 10] [--sample-s 15] [--backup-minutes 5]
                         [--out runs/soak.json]

The bot is `python -m bot` itself in a child process (bench/soak_bot.py points discord.py at
the fake Discord, which runs here with the simulated members), configured as an owner would:
LOG_FORMAT=json, METRICS_PORT, backups every `--backup-minutes`. Every `--interval` seconds a
member sends /write; mixed in, members click Continue (every 5th tick), Regenerate (7th), Stop on
a paragraph being written (6th) and a moderator changes a setting (10th).

Every `--sample-s` seconds it reads the bot's resident memory, open file descriptors and threads
(/proc), its asyncio tasks and request counts (/metrics), the database and WAL sizes, and its
ERROR lines (the JSON log). At the end of the warm-up (default 5 minutes, at most half of the
run), every `--checkpoint-minutes` of load after it and at the end, the members pause: the queue
drains and the idle bot is read before and after malloc_trim(0) (SIGUSR1). Memory is judged at
those idle checkpoints, because under load it follows what the batch holds at that moment. It
exits 1 when idle memory grows more than 5 % from the first checkpoint to the last, a count keeps
rising under load, or tasks are left on the loop once the queue drained. Then it stops the bot
with SIGTERM and reports the counts and the backups taken.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.load import TOPICS, populate, settled
from bench.soak_watch import IDLE_TASKS_TOLERANCE, MEMORY_GROWTH_LIMIT, BotProcess, Sample, judge, scrape
from bot.discord.views import CONTINUE_ID, REGENERATE_ID, STOP_ID
from bot.storage.backup import BadBackup, check_backup
from testing.buttons import button_ids, full_button_id
from testing.fakediscord import FakeDiscord
from testing.fakediscord.fixtures import started_fake_discord

# A token of a real token's shape (the bot's config refuses anything shorter); only the fake sees it.
SOAK_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GsOaK0.soak-run-token-value-ABCDEFGHIJKLMNOPQRST"
READY_TIMEOUT_S = 300.0  # the model loads on a busy CPU
RECENT_MESSAGES = 400  # clicks pick among the newest messages only
SETTINGS = ("temperature", "top_p", "top_k")
TRIM_WAIT_S = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Members:
    """The simulated members: what they do at each tick, and a tally of it."""

    def __init__(self, fake: FakeDiscord, channels: list[int], users: list[int], rng: random.Random) -> None:
        self.fake, self.channels, self.users, self.rng = fake, channels, users, rng
        self.guild = fake.seed.guild.id
        self.done: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    def act(self, tick: int) -> None:
        """This tick's actions, each in its own task (a slow reply never delays the next tick)."""
        self._spawn("write", self._write(tick))
        for every, offset, kind, action in ((5, 2, "continue", self._click(CONTINUE_ID)),
                                            (7, 3, "regenerate", self._click(REGENERATE_ID)),
                                            (6, 4, "stop", self._click(STOP_ID)),
                                            (10, 5, "settings", self._setting())):
            if tick % every == offset:
                self._spawn(kind, action)
            else:
                action.close()  # never awaited: close the coroutine

    def _spawn(self, kind: str, action: Any) -> None:
        async def counted() -> None:
            try:
                self.done[kind if await action else f"{kind} (nothing to click)"] += 1
            except LookupError:  # the message went away between looking and clicking
                self.done[f"{kind} (message gone)"] += 1
        task = asyncio.create_task(counted())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, tick: int) -> bool:
        channel, user = self.channels[tick % len(self.channels)], self.users[tick % len(self.users)]
        await self.fake.slash(self.guild, channel, user, "write", {"topic": TOPICS[tick % len(TOPICS)]})
        return True

    async def _click(self, button: str) -> bool:
        recent = list(self.fake.world.messages.values())[-RECENT_MESSAGES:]
        showing = [m for m in recent if m.author_id == self.fake.bot.id and not m.deleted
                   and button in button_ids(m) and (button == STOP_ID or settled(m))]
        if not showing:
            return False
        message = self.rng.choice(showing)
        # Stop is for the member who asked or a moderator: the admin (a moderator) clicks it.
        user = self.fake.seed.admin.id if button == STOP_ID else self.rng.choice(self.users)
        await self.fake.click(self.guild, message.channel_id, user, message.id, full_button_id(message, button))
        return True

    async def _setting(self) -> bool:
        name = self.rng.choice(SETTINGS)
        value = {"temperature": f"{self.rng.uniform(0.5, 1.0):.2f}", "top_p": f"{self.rng.uniform(0.8, 1.0):.2f}",
                 "top_k": str(self.rng.randint(20, 60))}[name]
        await self.fake.slash(self.guild, self.rng.choice(self.channels), self.fake.seed.admin.id, "settings",
                              {"name": name, "value": value}, "set")
        return True

    async def settle(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)


def bot_environment(folder: Path, fake: FakeDiscord, args: argparse.Namespace, port: int) -> dict[str, str]:
    """The bot's configuration, as an owner would write it in .env."""
    return {"DISCORD_TOKEN": fake.token, "DATABASE_PATH": str(folder / "bot.db"), "DEFAULT_MODEL": args.model,
            "DEVICE": args.device, "DEV_GUILD_ID": str(fake.seed.guild.id), "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO", "METRICS_PORT": str(port), "BACKUP_HOURS": f"{args.backup_minutes / 60:.6f}",
            "BACKUP_DIR": str(folder / "backups"), "BACKUP_KEEP": "3", "HF_HUB_OFFLINE": "1",
            "SOAK_CENSUS_DIR": str(folder)}


async def wait_until_ready(bot: BotProcess) -> float:
    began = time.monotonic()
    while time.monotonic() - began < READY_TIMEOUT_S:
        if bot.process.poll() is not None:
            raise RuntimeError(f"the bot exited with status {bot.process.returncode}; see {bot.log_path}")
        try:
            if (await bot.get("/healthz"))[0] == 200:
                return time.monotonic() - began
        except OSError:  # not listening yet
            pass
        await asyncio.sleep(1.0)
    raise TimeoutError(f"the bot was not ready after {READY_TIMEOUT_S:.0f} s; see {bot.log_path}")


@dataclass(frozen=True)
class Checkpoint:
    """The bot idle at a pause in the load: after the drain, and after malloc_trim(0)."""

    idle: Sample
    trimmed: Sample
    drained_s: float


def checkpoint_minutes(args: argparse.Namespace) -> list[float]:
    """Load minutes after which the load pauses for an idle reading: the end of the warm-up,
    every `--checkpoint-minutes` after it, and the end."""
    warmup = min(args.warmup, args.minutes / 2)
    marks, at = [warmup], warmup + args.checkpoint_minutes
    while at < args.minutes - 1e-9:
        marks.append(at)
        at += args.checkpoint_minutes
    return [*marks, args.minutes]


async def soak(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    async with started_fake_discord(SOAK_TOKEN) as fake:
        channels, users = await populate(fake, args.channels, args.users)
        port = free_port()
        bot = BotProcess(folder, fake.api_url, fake.gateway_url, bot_environment(folder, fake, args, port), port)
        try:
            ready_s = await wait_until_ready(bot)
            print(f"bot ready (Discord connected, {args.model} loaded, database writable) in {ready_s:.0f} s",
                  flush=True)
            members = Members(fake, channels, users, random.Random(args.seed))
            samples: list[Sample] = []
            checkpoints: list[Checkpoint] = []
            loaded_s, tick, began = 0.0, 0, time.monotonic()
            for mark in checkpoint_minutes(args):
                tick = await drive(bot, members, args, samples, began, mark * 60 - loaded_s, tick)
                loaded_s = mark * 60
                checkpoints.append(await pause(bot, members, args, samples, began))
            health = await bot.get("/healthz")
        finally:
            exit_status = stop(bot)
    return {"samples": samples, "checkpoints": checkpoints, "actions": dict(members.done),
            "health": health, "exit_status": exit_status,
            "error_lines": bot.error_lines, "unparsed_lines": bot.unparsed_lines,
            "backups": check_backups(folder / "backups"), "ready_s": ready_s,
            "objects_grown": objects_grown(folder)}


async def pause(bot: BotProcess, members: Members, args: argparse.Namespace, samples: list[Sample],
                began: float) -> Checkpoint:
    """Stop acting, let the queue drain, and read the idle bot before and after a heap trim."""
    await members.settle(60.0)
    drained = await drain(bot, args.drain, samples[0].tasks if samples else 0)
    idle = await bot.sample(time.monotonic() - began)
    trimmed = await trimmed_sample(bot, idle.t_s)
    print(f"idle checkpoint at t={idle.t_s:.0f}s: RSS {idle.rss_mb:.1f} MiB, after malloc_trim "
          f"{trimmed.rss_mb:.1f} MiB, tasks {idle.tasks}, fds {idle.fds} (drained in {drained:.0f} s)", flush=True)
    return Checkpoint(idle, trimmed, drained)


async def drive(bot: BotProcess, members: Members, args: argparse.Namespace, samples: list[Sample],
                began: float, seconds: float, tick: int) -> int:
    """Act every `--interval` seconds and sample every `--sample-s`, for `seconds`; the next tick."""
    loop = asyncio.get_running_loop()
    start, first_tick = loop.time(), tick
    next_sample = start
    while (now := loop.time()) < start + seconds:
        if now >= next_sample:
            samples.append(await bot.sample(time.monotonic() - began))
            show(samples[-1])
            next_sample += args.sample_s
        members.act(tick)
        tick += 1
        await asyncio.sleep(max(0.0, start + (tick - first_tick) * args.interval - loop.time()))
    return tick


async def drain(bot: BotProcess, timeout: float, idle_tasks: int) -> float:
    """Wait (at most `timeout` s) until no request waits or runs and the loop holds no more tasks
    than it did idle (streams finish their last edits after the engine is done); returns the
    seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        figures = scrape((await bot.get("/metrics"))[1])
        if (figures.get(("storybot_queue_length", ()), 1) == 0 and figures.get(("storybot_rows_running", ()), 1) == 0
                and figures.get(("storybot_asyncio_tasks", ()), idle_tasks + 1) <= idle_tasks + IDLE_TASKS_TOLERANCE):
            break
        await asyncio.sleep(2.0)
    return time.monotonic() - began


async def trimmed_sample(bot: BotProcess, t_s: float) -> Sample:
    """The idle bot once its C heap gave free pages back (SIGUSR1, bench/soak_bot.py): what stays
    is memory in use, not the allocator's high-water mark."""
    bot.process.send_signal(signal.SIGUSR1)
    await asyncio.sleep(TRIM_WAIT_S)
    return await bot.sample(t_s + TRIM_WAIT_S)


def stop(bot: BotProcess) -> int | None:
    """SIGTERM, as systemd or docker stop would; the bot's exit status (None if it hung)."""
    if bot.process.poll() is None:
        bot.process.send_signal(signal.SIGTERM)
    try:
        status = bot.process.wait(60)
    except subprocess.TimeoutExpired:
        bot.process.kill()
        status = None
    bot.read_log()
    bot.close()
    return status


def objects_grown(folder: Path, top: int = 8) -> list[tuple[str, int]]:
    """The Python object types whose live count grew most from the first idle checkpoint's census
    to the last (bench/soak_bot.py writes one at each heap trim)."""
    censuses = sorted(folder.glob("census-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    if len(censuses) < 2:
        return []
    first, last = (json.loads(p.read_text()) for p in (censuses[0], censuses[-1]))
    grown = {name: count - first.get(name, 0) for name, count in last.items()}
    return sorted(((n, g) for n, g in grown.items() if g > 0), key=lambda item: -item[1])[:top]


def check_backups(folder: Path) -> list[str]:
    found = []
    for path in sorted(folder.glob("*.db")):
        try:
            info = check_backup(path)
            found.append(f"{path.name}: ok, {info.rows['turns']} turns")
        except BadBackup as error:
            found.append(f"{path.name}: BAD: {error}")
    return found


def show(s: Sample) -> None:
    print(f"t={s.t_s:6.0f}s rss={s.rss_mb:7.1f}MiB fds={s.fds:3d} threads={s.threads:3d} tasks={s.tasks:4d} "
          f"db={s.db_mb:6.2f}MiB wal={s.wal_mb:5.2f}MiB errors={s.error_lines} done={s.done} busy={s.busy} "
          f"cancelled={s.cancelled} failed={s.failed} queue={s.queue}", flush=True)


def report(args: argparse.Namespace, result: dict[str, Any]) -> bool:
    samples: list[Sample] = result["samples"]
    checkpoints: list[Checkpoint] = result["checkpoints"]
    warmup_s = min(args.warmup * 60, args.minutes * 60 / 2)
    end = checkpoints[-1]
    idle_rss = [(c.trimmed.t_s, c.trimmed.rss_mb) for c in checkpoints]
    verdict = judge(samples, warmup_s, end.idle, idle_rss)
    loaded = judge(samples, warmup_s)
    last, idle = samples[-1], end.idle
    first = next((s for s in samples if s.t_s >= warmup_s), samples[0])
    print(f"\nactions: {', '.join(f'{k} {v}' for k, v in sorted(result['actions'].items()))}")
    print(f"requests: {idle.done} done, {idle.busy} busy, {idle.cancelled} cancelled, {idle.failed} failed")
    print("idle checkpoints (queue drained, then malloc_trim(0)): " + ", ".join(
        f"t={c.idle.t_s / 60:.1f} min {c.idle.rss_mb:.0f} -> {c.trimmed.rss_mb:.0f} MiB" for c in checkpoints))
    print(f"resident memory idle, from the end of the {warmup_s / 60:.1f}-minute warm-up to the end: "
          f"{verdict.rss_start_mb:.1f} -> {verdict.rss_end_mb:.1f} MiB ({100 * verdict.growth:+.1f} %, limit "
          f"+{100 * MEMORY_GROWTH_LIMIT:.0f} %), slope {verdict.rss_slope_mb_per_min:+.3f} MiB/min")
    print(f"resident memory under load after the warm-up (first and last fifth's medians): {loaded.rss_start_mb:.1f} "
          f"-> {loaded.rss_end_mb:.1f} MiB ({100 * loaded.growth:+.1f} %), peak {max(s.rss_mb for s in samples):.1f} MiB")
    for name in ("fds", "threads", "tasks"):
        print(f"{name}: {getattr(first, name)} after the warm-up, {getattr(last, name)} at the end"
              f"{'  KEEPS RISING' if name in verdict.rising else ''}")
    print(f"idle before the first command: RSS {samples[0].rss_mb:.1f} MiB, fds {samples[0].fds}, threads "
          f"{samples[0].threads}, tasks {samples[0].tasks}; idle at the end ({end.drained_s:.0f} s to drain): "
          f"RSS {idle.rss_mb:.1f} MiB, fds {idle.fds}, threads {idle.threads}, tasks {idle.tasks}")
    grown = ", ".join(f"{name} +{count}" for name, count in result["objects_grown"]) or "none"
    print(f"Python objects grown from the first idle checkpoint to the last: {grown}")
    print(f"database {idle.db_mb:.2f} MiB, WAL {idle.wal_mb:.2f} MiB at the end")
    print(f"error-log lines: {len(result['error_lines'])}; log lines that are not JSON: {result['unparsed_lines']}")
    for line in result["error_lines"][:5]:
        print(f"  {line}")
    print(f"backups: {'; '.join(result['backups']) or 'none'}")
    print(f"/healthz at the end: {result['health'][0]}; bot exit status after SIGTERM: {result['exit_status']}")
    print(f"minutes={args.minutes:g} model={args.model} samples={len(samples)} idle_rss_start_mb={verdict.rss_start_mb:.1f} "
          f"idle_rss_end_mb={verdict.rss_end_mb:.1f} rss_growth_pct={100 * verdict.growth:.2f} "
          f"rss_slope_mb_per_min={verdict.rss_slope_mb_per_min:.3f} loaded_rss_growth_pct={100 * loaded.growth:.2f} "
          f"fds={last.fds} threads={last.threads} tasks={last.tasks} idle_fds={idle.fds} idle_tasks={idle.tasks} "
          f"db_mb={idle.db_mb:.2f} wal_mb={idle.wal_mb:.2f} error_lines={len(result['error_lines'])} "
          f"done={idle.done} rising={','.join(verdict.rising) or 'none'} "
          f"pass={int(verdict.ok)}")
    return verdict.ok


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="how long members keep writing (default 30)")
    parser.add_argument("--model", default="smollm2", help="DEFAULT_MODEL of the bot (default smollm2)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between two /write (default 2)")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="minutes not judged (default 5; at most half of the run)")
    parser.add_argument("--checkpoint-minutes", type=float, default=10.0,
                        help="after the warm-up, pause the load this often to read the idle bot (default 10)")
    parser.add_argument("--sample-s", type=float, default=15.0, help="seconds between samples (default 15)")
    parser.add_argument("--backup-minutes", type=float, default=5.0, help="BACKUP_HOURS in minutes (default 5)")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--users", type=int, default=24)
    parser.add_argument("--drain", type=float, default=300.0, help="at the end, wait at most this long for the queue")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="also write the samples here as JSON, and the bot's log beside it (.bot.log)")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    print(f"soak: {args.minutes:g} minutes, a /write every {args.interval:g} s with Continue, Regenerate, Stop "
          f"and settings mixed in, model {args.model}", flush=True)
    with tempfile.TemporaryDirectory(prefix="storybot-soak-") as folder:
        result = asyncio.run(soak(args, Path(folder)))
        if args.out is not None:  # the bot's own log, for whoever reads the figures
            args.out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(folder) / "bot.log", args.out.with_suffix(".bot.log"))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"samples": [asdict(s) for s in result["samples"]],
                                        "checkpoints": [asdict(c) for c in result["checkpoints"]],
                                        "actions": result["actions"]}, indent=1))
    sys.exit(0 if report(args, result) else 1)


if __name__ == "__main__":
    main()
