"""Who may use the bot where, and each server's daily token budget, for every front.

The rules are the owner's access file (bot/access_file.py) together with what a server's
managers set with /access (stored per server). A refusal says why, in bot/messages.py's words.
The budget counts the tokens the bot writes per server per UTC day; the clock is passed in,
so tests can move to the next day.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from bot import messages
from bot.access_file import AccessFile, AccessRules
from bot.generation import Generation
from bot.messages import AccessDenied, BudgetSpent, PermissionDenied, UserError
from bot.place import Place
from bot.storage import Storage
from bot.storage.access import Rule, TargetKind

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Usage:
    """Tokens written for a server today, its budget (None: no limit) and seconds to the reset."""

    used: int
    limit: int | None
    resets_in_s: float

    @property
    def spent(self) -> bool:
        return self.limit is not None and self.used >= self.limit


def refusal(rules: AccessRules, user_id: int, role_ids: Iterable[int], channel_ids: Iterable[int]) -> str | None:
    """Why `rules` refuse this member here (None: they may). `channel_ids`: the channel, and a
    thread's parent too, so a rule on a channel covers its threads."""
    roles, channels = set(role_ids), set(channel_ids)
    if user_id in rules.blocked_users:
        return messages.ACCESS_USER_BLOCKED
    if roles & rules.blocked_roles:
        return messages.ACCESS_ROLE_BLOCKED
    if channels & rules.blocked_channels:
        return messages.ACCESS_CHANNEL_BLOCKED
    if rules.allowed_channels and not channels & rules.allowed_channels:
        return messages.ACCESS_CHANNEL_NOT_ALLOWED
    if (rules.allowed_users or rules.allowed_roles) and user_id not in rules.allowed_users \
            and not roles & rules.allowed_roles:
        return messages.ACCESS_MEMBER_NOT_ALLOWED
    return None


class AccessControl:
    """The access rules and the budget, as the service and the fronts ask about them."""

    def __init__(self, storage: Storage, rules_file: AccessFile | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.rules_file = rules_file or AccessFile(None)
        self._clock = clock  # Unix seconds: the budget's day is the UTC date
        self._counting: set[asyncio.Task[None]] = set()  # finished paragraphs whose tokens are being counted

    async def rules_for(self, guild_id: int | None) -> AccessRules:
        """The owner's rules for this server with the server's own (/access) added."""
        rules = self.rules_file.current().for_guild(guild_id)
        if guild_id is None:
            return rules
        own: dict[str, set[int]] = {}
        for rule, kind, target in await self.storage.access_rules(guild_id):
            own.setdefault(f"{'allowed' if rule == 'allow' else 'blocked'}_{kind}s", set()).add(target)
        return rules.merged(replace(AccessRules(), **{key: frozenset(ids) for key, ids in own.items()}))

    async def check(self, place: Place, role_ids: Iterable[int] = ()) -> None:
        """Raise AccessDenied, saying why, when this member may not use the bot here."""
        if place.guild_id is None:  # the console, or a DM (refused elsewhere): no server rules
            return
        channels = [c for c in (place.thread_id, place.channel_id) if c is not None]
        reason = refusal(await self.rules_for(place.guild_id), place.user_id, role_ids, channels)
        if reason is not None:
            raise AccessDenied(reason)

    # -- the budget ---------------------------------------------------------------------------
    def _today(self) -> tuple[str, float]:
        """(today's UTC date as YYYY-MM-DD, seconds until the next UTC midnight)."""
        now = self._clock()
        day = datetime.datetime.fromtimestamp(now, datetime.UTC).date()
        return day.isoformat(), SECONDS_PER_DAY - now % SECONDS_PER_DAY

    async def usage(self, guild_id: int | None) -> Usage | None:
        """Today's use of this server's budget (None outside a server)."""
        if guild_id is None:
            return None
        day, left = self._today()
        limit = (await self.rules_for(guild_id)).daily_tokens
        return Usage(await self.storage.tokens_used(guild_id, day), limit, left)

    async def check_budget(self, place: Place) -> None:
        """Raise BudgetSpent when this server has written its tokens for today."""
        usage = await self.usage(place.guild_id)
        if usage is not None and usage.spent:
            raise BudgetSpent(messages.BUDGET_SPENT.format(limit=usage.limit,
                                                           wait=duration_text(usage.resets_in_s)))

    def counted(self, generation: Generation) -> Generation:
        """Count the tokens `generation` writes against its server's budget once it ends."""
        async def count() -> None:
            await generation.result()
            try:
                await self.record(generation.place.guild_id, generation.handle.tokens_written)
            except Exception:  # the paragraph itself is fine; only the budget misses it
                log.exception("could not count the tokens of a paragraph in guild %s", generation.place.guild_id)

        task = asyncio.create_task(count(), name=f"count-{generation.handle.id}")
        self._counting.add(task)
        task.add_done_callback(self._counting.discard)
        return generation

    async def wait(self, timeout: float) -> None:
        """Let the counting of finished paragraphs end (on shutdown, before storage closes)."""
        if self._counting:
            await asyncio.wait(list(self._counting), timeout=timeout)

    async def record(self, guild_id: int | None, tokens: int) -> None:
        """Count tokens written for this server today."""
        if guild_id is not None and tokens > 0:
            await self.storage.add_tokens(guild_id, self._today()[0], tokens)

    # -- /access ------------------------------------------------------------------------------
    async def set_rule(self, place: Place, kind: TargetKind, target_id: int, rule: Rule | None) -> str:
        """Allow or block a user, role or channel in this server (None: remove its rule)."""
        guild_id = self._managed_guild(place)
        if rule is None:
            removed = await self.storage.clear_access_rule(guild_id, kind, target_id)
            return messages.ACCESS_CLEARED if removed else messages.ACCESS_NOTHING_TO_CLEAR
        await self.storage.set_access_rule(guild_id, kind, target_id, rule)
        return messages.ACCESS_SET.format(rule="allowed" if rule == "allow" else "blocked")

    async def server_rules(self, place: Place) -> tuple[AccessRules, list[tuple[Rule, TargetKind, int]]]:
        """(every rule in force here, the ones this server set itself), for /access show."""
        guild_id = self._managed_guild(place)
        return await self.rules_for(guild_id), await self.storage.access_rules(guild_id)

    @staticmethod
    def _managed_guild(place: Place) -> int:
        if place.guild_id is None:
            raise UserError("access rules belong to a server: use this inside one")
        if not place.can_manage_guild:
            raise PermissionDenied("changing who may use the bot needs the Manage Server permission")
        return place.guild_id


def duration_text(seconds: float) -> str:
    """A wait in words: "3 h 12 min", "12 min", "less than a minute"."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "less than a minute"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
