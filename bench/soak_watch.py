"""What a soak run watches in the bot's process, and how it judges growth (bench/soak.py).

The bot runs as a child process (bench/soak_bot.py, i.e. `python -m bot`), so everything read
here is the bot's own: resident memory, file descriptors and threads from /proc, asyncio tasks
and request counts from its /metrics, the database and WAL sizes from disk, and error lines
from its JSON log (LOG_FORMAT=json).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

# A count "keeps rising" when the medians of the three thirds after the warm-up each rise and
# the last is above the first by more than this (tasks and fds come and go with the requests).
RISE_TOLERANCE = {"fds": 4, "threads": 2, "tasks": 10}
MEMORY_GROWTH_LIMIT = 0.05  # resident memory may grow at most 5 % after the warm-up
IDLE_TASKS_TOLERANCE = 2  # a scrape or a backup may be under way while the idle bot is sampled
EDGE_SAMPLES = 3  # at least this many samples' median marks the start and the end of the judged span


@dataclass(frozen=True)
class Sample:
    """The bot's process at one moment (seconds since the load began)."""

    t_s: float
    rss_mb: float
    fds: int
    threads: int
    tasks: int
    db_mb: float
    wal_mb: float
    error_lines: int
    done: int
    busy: int
    cancelled: int
    failed: int
    queue: int


class BotProcess:
    """The bot as a child process, its log in a file, its /metrics on a loopback port."""

    def __init__(self, folder: Path, api_url: str, gateway_url: str, env: dict[str, str], port: int) -> None:
        self.folder, self.port = folder, port
        self.database = Path(env["DATABASE_PATH"])
        self.log_path = folder / "bot.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "bench.soak_bot", api_url, gateway_url],
                                        env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT)
        self._read_to = 0
        self.error_lines: list[str] = []
        self.unparsed_lines = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as response:
            return response.status, await response.text()

    def _proc(self, name: str) -> str:
        return (Path("/proc") / str(self.process.pid) / name).read_text()

    def read_log(self) -> None:
        """Count the new ERROR and CRITICAL lines (and lines that are not JSON) since the last read."""
        with self.log_path.open("rb") as file:
            file.seek(self._read_to)
            chunk = file.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._read_to += len(complete)
        for raw in complete.decode("utf-8", "replace").splitlines():
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                self.unparsed_lines += 1
                continue
            if isinstance(line, dict) and line.get("level") in ("ERROR", "CRITICAL"):
                self.error_lines.append(f"{line.get('logger')}: {line.get('message')}"[:300])

    async def sample(self, t_s: float) -> Sample:
        page = os.sysconf("SC_PAGE_SIZE")
        rss_mb = int(self._proc("statm").split()[1]) * page / 2**20
        fds = len(os.listdir(f"/proc/{self.process.pid}/fd"))
        threads = int(next(line.split()[1] for line in self._proc("status").splitlines()
                           if line.startswith("Threads:")))
        figures = scrape((await self.get("/metrics"))[1])
        self.read_log()
        wal = self.database.with_name(self.database.name + "-wal")

        def outcome(name: str) -> int:
            return int(sum(v for (n, labels), v in figures.items()
                           if n == "storybot_requests_total" and ("outcome", name) in labels))
        return Sample(t_s, rss_mb, fds, threads, int(figures.get(("storybot_asyncio_tasks", ()), 0)),
                      size_mb(self.database), size_mb(wal), len(self.error_lines), outcome("done"),
                      outcome("busy"), outcome("cancelled"), outcome("failed"),
                      int(figures.get(("storybot_queue_length", ()), 0)))

    def close(self) -> None:
        self._log.close()


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def size_mb(path: Path) -> float:
    return path.stat().st_size / 2**20 if path.exists() else 0.0


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 2:
        return 0.0
    return statistics.linear_regression([t for t, _ in points], [v for _, v in points]).slope * 60


def edges(values: list[float]) -> tuple[float, float]:
    """Medians of the first and the last fifth of the values (at least EDGE_SAMPLES each): the
    start and the end of a trend. Memory follows how many rows the batch holds at each moment,
    so single samples would compare a full batch with an emptier one."""
    n = min(max(EDGE_SAMPLES, len(values) // 5), len(values))
    return statistics.median(values[:n]), statistics.median(values[-n:])


def keeps_rising(values: list[float], tolerance: float) -> bool:
    """The medians of the three thirds each rise, and the last exceeds the first by `tolerance`."""
    if len(values) < 6:
        return False
    third = len(values) // 3
    medians = [statistics.median(values[i * third:(i + 1) * third]) for i in range(2)]
    medians.append(statistics.median(values[2 * third:]))
    return medians[0] < medians[1] < medians[2] and medians[2] - medians[0] > tolerance


@dataclass(frozen=True)
class Verdict:
    """What the judged span (after the warm-up) shows."""

    rss_start_mb: float
    rss_end_mb: float
    rss_slope_mb_per_min: float
    rising: tuple[str, ...]

    @property
    def growth(self) -> float:
        return self.rss_end_mb / self.rss_start_mb - 1 if self.rss_start_mb else 0.0

    @property
    def ok(self) -> bool:
        return self.growth <= MEMORY_GROWTH_LIMIT and not self.rising


def judge(samples: list[Sample], warmup_s: float, idle_end: Sample | None = None,
          idle_rss: list[tuple[float, float]] | None = None) -> Verdict:
    """Judge the loaded samples after the warm-up; with `idle_end` (the bot after the queue drained)
    also whether tasks were left behind: idle, the loop should hold what it held before any command
    (the first sample). Threads and fds are not compared so: executors and connection pools grow
    to their bounds on first use and stay.

    With `idle_rss` ((seconds, MiB) of the bot idle and trimmed at checkpoints, the first after
    the warm-up), memory is judged there: under load it follows what the batch holds at that
    moment (rows, story lengths), idle it is what the bot keeps."""
    judged = [s for s in samples if s.t_s >= warmup_s] or samples[-1:]
    if idle_rss:
        start, end = idle_rss[0][1], idle_rss[-1][1]
        slope = slope_per_min(idle_rss)
    else:
        start, end = edges([s.rss_mb for s in judged])
        slope = slope_per_min([(s.t_s, s.rss_mb) for s in judged])
    rising = tuple(name for name, tolerance in RISE_TOLERANCE.items()
                   if keeps_rising([float(getattr(s, name)) for s in judged], tolerance))
    if idle_end is not None and samples and idle_end.tasks > samples[0].tasks + IDLE_TASKS_TOLERANCE:
        rising += ("tasks left after the drain",)
    return Verdict(start, end, slope, rising)
