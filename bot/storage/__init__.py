"""SQLite storage: settings per scope and stories with their turns, in one WAL database.

database.py owns the connection (PRAGMAs, transactions, migrations, the errors users may see);
settings.py and stories.py hold each table's operations, branches.py branching and listing,
access.py the servers' access rules and token use, cast.py each story's cast of names; records.py
the values they return; retention.py prunes old history on a timer. `Storage` is all the tables
on one connection.
"""

from __future__ import annotations

from bot.storage.access import AccessTable
from bot.storage.branches import BranchesTable, StoryListing
from bot.storage.database import DatabaseTooNew, StorageUnavailable
from bot.storage.records import KeptChoice, Scope, Story, Turn, TurnKind
from bot.storage.settings import SettingsTable
from bot.storage.stories import StoriesTable


class Storage(SettingsTable, StoriesTable, BranchesTable, AccessTable):
    """The bot's database: open with `Storage.open(path)`, close with `close` (or `async with`)."""


__all__ = ["DatabaseTooNew", "KeptChoice", "Scope", "Storage", "StorageUnavailable", "Story", "StoryListing", "Turn",
           "TurnKind"]
