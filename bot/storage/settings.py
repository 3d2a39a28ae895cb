"""Settings per scope (server, channel, thread), each a JSON object of the names set there."""

from __future__ import annotations

import json
from typing import Any

from bot.storage.database import Database
from bot.storage.records import Scope, check_scope, dumps


class SettingsTable(Database):
    """The settings table: read, merge and reset one scope's values."""

    async def get_settings(self, scope: Scope, scope_id: int) -> dict[str, Any]:
        """The settings stored for one scope, as a name -> value dict (empty if none)."""
        check_scope(scope)
        row = await self._fetchone(
            "SELECT values_json FROM settings WHERE scope = ? AND scope_id = ?", (scope, scope_id)
        )
        return json.loads(row[0]) if row else {}

    async def update_settings(self, scope: Scope, scope_id: int, values: dict[str, Any]) -> dict[str, Any]:
        """Merge ``values`` into the scope's settings; a value of None unsets that name.

        Returns the settings after the change. A scope left with no settings loses its row.
        """
        check_scope(scope)
        async with self.transaction() as conn:
            async with conn.execute(
                "SELECT values_json FROM settings WHERE scope = ? AND scope_id = ?", (scope, scope_id)
            ) as cursor:
                row = await cursor.fetchone()
            merged: dict[str, Any] = json.loads(row[0]) if row else {}
            for name, value in values.items():
                if value is None:
                    merged.pop(name, None)
                else:
                    merged[name] = value
            if merged:
                await conn.execute(
                    "INSERT INTO settings (scope, scope_id, values_json, updated_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (scope, scope_id) DO UPDATE"
                    " SET values_json = excluded.values_json, updated_at = excluded.updated_at",
                    (scope, scope_id, dumps(merged), self._clock()),
                )
            else:
                await conn.execute("DELETE FROM settings WHERE scope = ? AND scope_id = ?", (scope, scope_id))
        return merged

    async def reset_settings(self, scope: Scope, scope_id: int) -> bool:
        """Remove every setting of one scope; True if there was anything to remove."""
        check_scope(scope)
        async with self.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM settings WHERE scope = ? AND scope_id = ?", (scope, scope_id)
            )
            return cursor.rowcount > 0

