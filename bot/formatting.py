"""Text both fronts show: settings tables, stats, and generated text made safe to post."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.engine.metrics import EngineStats
from bot.engine.requests import Progress
from bot.preferences import ALL_SETTINGS, EffectiveSettings
from models.registry import takes_style

_MASS_MENTION = re.compile(r"@(everyone|here)", re.IGNORECASE)
_MENTION = re.compile(r"<(@[!&]?|#)(\d+)>")
ZERO_WIDTH_SPACE = "\u200b"


def defuse_mentions(text: str) -> str:
    """Make @everyone, @here, <@user>, <@&role> and <#channel> inert even if a client parses them.

    allowed_mentions=none already stops pings; this also keeps the text from looking like one.
    """
    text = _MASS_MENTION.sub(lambda m: "@" + ZERO_WIDTH_SPACE + m.group(1), text)
    return _MENTION.sub(lambda m: "<" + m.group(1) + ZERO_WIDTH_SPACE + m.group(2) + ">", text)


def strip_mentions(text: str) -> str:
    """Text a member typed with its mention syntax taken out, for text that reaches a prompt (a
    model would only copy `<@123>` into the story): `<@123>`, `<@&123>` and `<#123>` go, and
    `@everyone` / `@here` lose their `@`."""
    text = _MASS_MENTION.sub(lambda m: m.group(1), text)
    return " ".join(_MENTION.sub(" ", text).split())


def only_mentions(text: str) -> bool:
    """Whether `text` says nothing but mentions (`<@123>`, `@everyone`, ...): no topic to write on."""
    return bool(text.strip()) and not _MENTION.sub(" ", _MASS_MENTION.sub(" ", text)).strip()


def shown_value(value: object) -> str:
    """A setting's value as members read it: on/off, unset, (none), phrases joined by "; "."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list)):
        return "; ".join(str(v) for v in value) if value else "(none)"
    return "(none)" if value == "" else str(value)


def settings_table(settings: EffectiveSettings, models: Sequence[str] = (), unsupported: Sequence[str] = ()) -> str:
    """One line per setting: name, value, where the value comes from, and what it may be (the
    offered models for `model`); settings the model cannot honour are marked so."""
    lines = []
    sources = settings.sources
    # The DRY family is one feature: a server without it honours none of them.
    marked = {n for n in ALL_SETTINGS
              if n in unsupported or (n.startswith("dry_") and "dry_multiplier" in unsupported)}
    for name, spec in ALL_SETTINGS.items():
        shown = shown_value(settings.value(name))
        allowed = f"offered: {', '.join(models)}" if name == "model" and models else spec.range_text()
        source = f"{sources[name]}; " if sources and name in sources else ""
        if name == "style" and not takes_style(settings.params.model):
            shown = f"{shown}: does not apply to {settings.params.model}"
        lines.append(f"{name} = {shown}  ({source}{allowed})"
                     + (f"  [not supported by {settings.params.model}]" if name in marked else ""))
    return "\n".join(lines)


def progress_text(progress: Progress) -> str:
    """A member's own request in a few words."""
    if progress.state == "waiting":
        return f"waiting, number {progress.position} in line"
    if progress.state == "loading":
        return "waiting for the model to load"
    if progress.state == "starting":
        return "starting"
    return f"being written, {progress.tokens} tokens so far"


def stats_text(stats: EngineStats, mine: Sequence[Progress] = (), stored: dict[str, int] | None = None) -> str:
    """The engine's figures; `mine`: the caller's own requests in flight; `stored`: the
    database's row counts."""
    def seconds(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} s"

    lines = [
        f"queue: {stats.queue_length} waiting, {stats.running} being written",
        f"speed: {stats.tokens_per_s:.1f} tokens/s (last 10 s), {stats.tokens_total} tokens in all",
        f"time to first token p50: {seconds(stats.ttft_p50_s)}; request p50: {seconds(stats.latency_p50_s)}",
        f"requests: {stats.requests_done} done, {stats.requests_cancelled} stopped, {stats.requests_failed} failed",
        f"models loaded: {', '.join(stats.models) or 'none yet'}; device: {stats.device}",
        f"uptime: {stats.uptime_s / 60:.0f} min",
    ]
    if stored is not None:
        lines.append(f"stored: {stored['stories']} stories, {stored['turns']} paragraphs")
    for status in stats.endpoints:
        state = {"closed": "up", "open": "DOWN", "half_open": "down, being probed"}[status.state]
        lines.append(f"remote {status.model} at {status.label}: {state}, "
                     f"{status.in_flight}/{status.max_in_flight} in flight")
    for index, progress in enumerate(mine):
        lines.insert(1 + index, f"your request: {progress_text(progress)}")
    return "\n".join(lines)
