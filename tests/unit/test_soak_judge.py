"""bench.soak's verdict: memory growth past 5 % after the warm-up, or a count that keeps rising, fails."""

from __future__ import annotations

from dataclasses import replace

from bench.soak_watch import Sample, judge


def samples(rss: list[float], fds: list[int] | None = None, tasks: list[int] | None = None) -> list[Sample]:
    fds = fds or [12] * len(rss)
    tasks = tasks or [8] * len(rss)
    return [Sample(t_s=60.0 * i, rss_mb=r, fds=f, threads=9, tasks=k, db_mb=1.0, wal_mb=1.0, error_lines=0,
                   done=i, busy=0, cancelled=0, failed=0, queue=0)
            for i, (r, f, k) in enumerate(zip(rss, fds, tasks, strict=True))]


def test_growth_during_the_warm_up_is_not_judged_and_a_plateau_passes() -> None:
    verdict = judge(samples([500, 700, 900, 1000, 1004, 998, 1003, 1001, 999, 1002]), warmup_s=180)
    assert verdict.ok and abs(verdict.growth) < 0.01 and abs(verdict.rss_slope_mb_per_min) < 1


def test_memory_that_grows_more_than_five_percent_after_the_warm_up_fails() -> None:
    verdict = judge(samples([1000, 1000, 1000, 1010, 1020, 1030, 1040, 1050, 1060, 1070, 1080]), warmup_s=120)
    assert not verdict.ok and verdict.growth > 0.05 and verdict.rss_slope_mb_per_min > 9


def test_file_descriptors_that_keep_rising_fail_but_tasks_that_come_and_go_do_not() -> None:
    rss = [1000.0] * 12
    leaking = judge(samples(rss, fds=[12, 13, 14, 16, 18, 19, 21, 23, 25, 26, 28, 30]), warmup_s=0)
    busy = judge(samples(rss, tasks=[8, 40, 9, 35, 12, 50, 7, 44, 10, 38, 9, 41]), warmup_s=0)
    assert leaking.rising == ("fds",) and not leaking.ok
    assert busy.rising == () and busy.ok


def test_tasks_left_on_the_loop_once_the_queue_drained_fail() -> None:
    loaded = samples([1000.0] * 6, tasks=[6, 110, 120, 110, 125, 115])  # idle, then a plateau under load
    clean, leaked = (judge(loaded, 60, idle_end=replace(loaded[-1], tasks=idle)) for idle in (7, 30))
    assert clean.ok
    assert leaked.rising == ("tasks left after the drain",) and not leaked.ok


def test_with_idle_checkpoints_memory_is_judged_idle_not_under_load() -> None:
    loaded = samples([1000, 1100, 1250, 1180, 1320, 1290, 1450, 1400])  # follows the batch, not a leak
    steady = judge(loaded, 60, idle_rss=[(120.0, 900.0), (300.0, 910.0), (420.0, 905.0)])
    leaking = judge(loaded, 60, idle_rss=[(120.0, 900.0), (300.0, 940.0), (420.0, 990.0)])
    assert steady.ok and steady.rss_start_mb == 900 and steady.rss_end_mb == 905
    assert not leaking.ok and leaking.growth > 0.05 and leaking.rss_slope_mb_per_min > 0
