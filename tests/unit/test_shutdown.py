"""SIGTERM in the offline console, and a database closed so that nothing needs recovering."""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bot.messages import SHUTTING_DOWN
from bot.storage import Storage

ROOT = Path(__file__).resolve().parents[2]
# Hundreds of tokens from the tiny model take seconds: long enough to be interrupted.
LONG_PARAGRAPH = ("/settings set max_new_tokens 400\n/settings set min_new_tokens 256\n"
                  "/settings set stop_at_paragraph off\n")
LAST_SETTING_LINE = b"stop_at_paragraph is now False"


def start_console(db: Path, model: Path, grace_s: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    env.update(DATABASE_PATH=str(db), DEFAULT_MODEL=str(model), HF_HUB_OFFLINE="1", LOG_LEVEL="INFO",
               SHUTDOWN_GRACE_S=str(grace_s))
    return subprocess.Popen([sys.executable, "-m", "bot"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, env=env)


def read_until_writing(process: subprocess.Popen[bytes], timeout: float = 120) -> bytes:
    """Console output up to the first streamed characters of the paragraph."""
    assert process.stdout is not None
    out, deadline = b"", time.monotonic() + timeout
    while not (LAST_SETTING_LINE in out and out.split(LAST_SETTING_LINE, 1)[1].strip()):
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(process.stdout.fileno(), 4096) if ready else b""
        assert chunk, f"no paragraph started streaming; output so far: {out!r}"
        out += chunk
    return out


def wal_is_empty(db: Path) -> bool:
    wal = db.with_name(db.name + "-wal")
    return not wal.exists() or wal.stat().st_size == 0


def test_sigterm_mid_paragraph_cuts_it_with_a_note_and_closes_the_database_cleanly(
        tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    db = tmp_path / "bot.db"
    console = start_console(db, tiny_gpt2_dir, grace_s=0)
    assert console.stdin is not None
    # stdin stays open: the console is waiting for more, as a terminal would be.
    console.stdin.write(f"{LONG_PARAGRAPH}/write topic: a lighthouse keeper\n/write topic: never\n".encode())
    console.stdin.flush()
    streamed = read_until_writing(console)
    console.send_signal(signal.SIGTERM)
    rest, errors = console.communicate(timeout=60)
    stdout, stderr = (streamed + rest).decode(errors="replace"), errors.decode(errors="replace")
    assert console.returncode == 0, stderr
    assert f"Sorry: {SHUTTING_DOWN}" in stdout and "shutting down: goodbye" in stdout
    assert "Traceback" not in stderr and "engine stopped and database closed" in stderr
    assert wal_is_empty(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stories = conn.execute("SELECT COUNT(*) FROM stories").fetchone()
        (settings,) = conn.execute("SELECT values_json FROM settings").fetchone()
    assert stories == (0,)  # the cut paragraph is not stored, and the second /write never ran
    assert '"max_new_tokens":400' in settings


async def test_closing_storage_empties_the_wal_even_while_another_connection_is_open(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    storage = await Storage.open(db)
    other = sqlite3.connect(db)  # a backup tool or a sqlite3 shell left open
    try:
        other.execute("SELECT COUNT(*) FROM settings").fetchone()  # now it shares the WAL
        await storage.update_settings("channel", 1, {"temperature": 0.9})
        assert not wal_is_empty(db)
        await storage.close()
        assert wal_is_empty(db)
        assert other.execute("SELECT values_json FROM settings").fetchone() == ('{"temperature":0.9}',)
    finally:
        other.close()
