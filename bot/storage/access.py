"""A server's own allow and block rules (/access) and the tokens it used per day (the budget)."""

from __future__ import annotations

from typing import Literal, get_args

from bot.storage.database import Database

TargetKind = Literal["user", "role", "channel"]
Rule = Literal["allow", "block"]
TARGET_KINDS: tuple[TargetKind, ...] = get_args(TargetKind)
RULES: tuple[Rule, ...] = get_args(Rule)


class AccessTable(Database):
    """The access_rules and token_usage tables."""

    async def access_rules(self, guild_id: int) -> list[tuple[Rule, TargetKind, int]]:
        """This server's rules as (rule, kind, target id), in a stable order."""
        rows = await self._fetchall(
            "SELECT rule, kind, target_id FROM access_rules WHERE guild_id = ? ORDER BY rule, kind, target_id",
            (guild_id,))
        return [(rule, kind, int(target)) for rule, kind, target in rows]

    async def set_access_rule(self, guild_id: int, kind: TargetKind, target_id: int, rule: Rule) -> None:
        """Allow or block one user, role or channel here (replacing its earlier rule)."""
        if kind not in TARGET_KINDS or rule not in RULES:
            raise ValueError(f"kind must be one of {TARGET_KINDS} and rule one of {RULES}")
        async with self.transaction() as conn:
            await conn.execute(
                "INSERT INTO access_rules (guild_id, kind, target_id, rule) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (guild_id, kind, target_id) DO UPDATE SET rule = excluded.rule",
                (guild_id, kind, target_id, rule))

    async def clear_access_rule(self, guild_id: int, kind: TargetKind, target_id: int) -> bool:
        """Remove this target's rule here; False when it had none."""
        async with self.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM access_rules WHERE guild_id = ? AND kind = ? AND target_id = ?",
                (guild_id, kind, target_id))
            return cursor.rowcount > 0

    async def add_tokens(self, guild_id: int, day: str, tokens: int) -> None:
        """Count `tokens` more written for this server on `day` (YYYY-MM-DD, UTC)."""
        async with self.transaction() as conn:
            await conn.execute(
                "INSERT INTO token_usage (guild_id, day, tokens) VALUES (?, ?, ?)"
                " ON CONFLICT (guild_id, day) DO UPDATE SET tokens = tokens + excluded.tokens",
                (guild_id, day, tokens))

    async def tokens_used(self, guild_id: int, day: str) -> int:
        """Tokens written for this server on `day` (YYYY-MM-DD, UTC)."""
        row = await self._fetchone("SELECT tokens FROM token_usage WHERE guild_id = ? AND day = ?",
                                   (guild_id, day))
        return int(row[0]) if row else 0
