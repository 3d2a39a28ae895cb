"""`python -m bot.restore FILE`: put a backup back as the bot's database, after checking it.

    python -m bot.restore data/backups/bot-20261130T101500Z.db [--database data/bot.db] [--dry-run]

Stop the bot first. The backup must pass SQLite's integrity check and be a database of a schema
this bot knows; otherwise nothing is touched (exit status 1). The current database, if there is
one, is first saved beside itself as `<name>.before-restore-<UTC time>.db`, so a restore can be
undone. DATABASE_PATH (environment or .env) names the database unless --database does.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.config import read_dotenv
from bot.ops.backups import STAMP
from bot.storage.backup import BackupInfo, BadBackup, backup_database, check_backup, restore_database


def default_database() -> Path:
    import os

    env = read_dotenv(Path(".env")) | dict(os.environ)
    return Path(env.get("DATABASE_PATH", "").strip() or "data/bot.db")


def describe(info: BackupInfo) -> str:
    return (f"schema version {info.schema_version}, "
            + ", ".join(f"{count} {table}" for table, count in info.rows.items()))


def restore(backup: Path, database: Path, dry_run: bool = False) -> int:
    """Check, keep the current database aside, restore; returns the exit status."""
    try:
        info = check_backup(backup)
    except BadBackup as error:
        print(f"not restored: {error}", file=sys.stderr)
        return 1
    print(f"{backup}: integrity ok, {describe(info)}")
    if dry_run:
        print("dry run: nothing restored")
        return 0
    if database.exists():
        stamp = datetime.fromtimestamp(time.time(), UTC).strftime(STAMP)
        kept = database.with_name(f"{database.stem}.before-restore-{stamp}.db")
        try:
            backup_database(database, kept)
        except (BadBackup, OSError) as error:
            print(f"not restored: the current database could not be saved first ({error})", file=sys.stderr)
            return 1
        print(f"the current database is saved as {kept}")
    restored = restore_database(backup, database)
    after = check_backup(database)
    print(f"restored into {database}: integrity ok, {describe(after)}")
    return 0 if after.rows == restored.rows else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("backup", type=Path, help="the backup file to restore")
    parser.add_argument("--database", type=Path, default=None,
                        help="the database to replace (default: DATABASE_PATH, else data/bot.db)")
    parser.add_argument("--dry-run", action="store_true", help="only check the backup")
    args = parser.parse_args(argv)
    return restore(args.backup, args.database or default_database(), args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
