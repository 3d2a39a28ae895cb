"""The owner's access file (TOML): who may use the bot, where, and each server's daily token
budget. Read at start-up and again whenever the file changes, so no restart is needed.

```toml
[default]                  # every server
daily_tokens = 200000      # tokens the bot may write per server per UTC day; leave out for no limit
blocked_users = [111111111111111111]

[servers.222222222222222222]
daily_tokens = 50000       # this server's own budget
allowed_roles = [333333333333333333]   # only members with one of these roles
blocked_channels = [444444444444444444]
```

Lists: `allowed_users`, `allowed_roles`, `allowed_channels`, `blocked_users`, `blocked_roles`,
`blocked_channels` (Discord ids: Developer Mode, then "Copy ID"). A server's section adds to
`[default]`'s lists, and its `daily_tokens` replaces the default's.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LIST_KEYS = ("allowed_users", "allowed_roles", "allowed_channels", "blocked_users", "blocked_roles",
             "blocked_channels")
BUDGET_KEY = "daily_tokens"


class AccessFileError(ValueError):
    """The access file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class AccessRules:
    """Who may use the bot in one server: allow and block lists of ids, and the daily budget.

    An empty allow list allows everyone; a block always wins over an allow."""

    allowed_users: frozenset[int] = frozenset()
    allowed_roles: frozenset[int] = frozenset()
    allowed_channels: frozenset[int] = frozenset()
    blocked_users: frozenset[int] = frozenset()
    blocked_roles: frozenset[int] = frozenset()
    blocked_channels: frozenset[int] = frozenset()
    daily_tokens: int | None = None
    """Tokens the bot may write for this server per UTC day; None: no limit."""

    def merged(self, other: AccessRules) -> AccessRules:
        """These rules and `other`'s: the lists together, `other`'s budget when it sets one."""
        lists = {key: getattr(self, key) | getattr(other, key) for key in LIST_KEYS}
        budget = other.daily_tokens if other.daily_tokens is not None else self.daily_tokens
        return replace(self, **lists, daily_tokens=budget)


@dataclass(frozen=True)
class AccessConfig:
    """The whole access file: the default rules and each server's own."""

    default: AccessRules = field(default_factory=AccessRules)
    servers: Mapping[int, AccessRules] = field(default_factory=dict)

    def for_guild(self, guild_id: int | None) -> AccessRules:
        """The rules for one server: the default's, with the server's own added."""
        own = self.servers.get(guild_id) if guild_id is not None else None
        return self.default if own is None else self.default.merged(own)


def parse_access(text: str, where: str = "the access file") -> AccessConfig:
    """The rules written in `text` (TOML); raise AccessFileError naming the first problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise AccessFileError(f"{where} is not valid TOML: {error}") from None
    unknown = sorted(set(data) - {"default", "servers"})
    if unknown:
        raise AccessFileError(f"{where}: unknown section {unknown[0]!r} (use [default] and [servers.ID])")
    default = _rules(data.get("default", {}), f"{where} [default]")
    servers: dict[int, AccessRules] = {}
    for key, section in _table(data.get("servers", {}), f"{where} [servers]").items():
        if not key.isdigit():
            raise AccessFileError(f"{where}: [servers.{key}] must be a server id (digits)")
        servers[int(key)] = _rules(section, f"{where} [servers.{key}]")
    return AccessConfig(default, servers)


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AccessFileError(f"{where} must be a table")
    return value


def _rules(section: Any, where: str) -> AccessRules:
    section = _table(section, where)
    known = {f.name for f in fields(AccessRules)}
    for key in section:
        if key not in known:
            raise AccessFileError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
    lists: dict[str, frozenset[int]] = {}
    for key in LIST_KEYS:
        ids = section.get(key, [])
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0
                                                for i in ids):
            raise AccessFileError(f"{where}: {key} must be a list of Discord ids (numbers), got {ids!r}")
        lists[key] = frozenset(ids)
    budget = section.get(BUDGET_KEY)
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 1):
        raise AccessFileError(f"{where}: {BUDGET_KEY} must be a whole number of tokens, 1 or more "
                              f"(leave it out for no limit), got {budget!r}")
    return AccessRules(**lists, daily_tokens=budget)


class AccessFile:
    """The access file at `path`, read again whenever it changes (its modification time or size).

    A change that cannot be read (half-written, a typo) is logged and the rules read before stay
    in force, so a slip never opens or closes the bot by accident. No path, or no file: no rules.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._config = AccessConfig()
        self.current()  # the rules in force from the start (a broken file is logged, not raised)

    def load(self) -> AccessConfig:
        """Read the file now; raise AccessFileError if it cannot be used (start-up reports it)."""
        stamp = self._stat()
        self._config = self._read() if stamp is not None else AccessConfig()
        self._stamp = stamp
        return self._config

    def current(self) -> AccessConfig:
        """The rules in force: read again if the file changed since the last look."""
        stamp = self._stat()
        if stamp == self._stamp:
            return self._config
        try:
            self._config = self._read() if stamp is not None else AccessConfig()
            log.info("access rules %s from %s", "reloaded" if stamp else "cleared (no file)", self.path)
        except AccessFileError as error:
            log.error("%s; the access rules read before stay in force", error)
        except OSError as error:
            log.error("could not read %s (%s); the access rules read before stay in force", self.path, error)
            return self._config  # look again next time
        self._stamp = stamp
        return self._config

    def _stat(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return info.st_mtime_ns, info.st_size

    def _read(self) -> AccessConfig:
        assert self.path is not None  # _stat found a file
        return parse_access(self.path.read_text(encoding="utf-8"), str(self.path))
