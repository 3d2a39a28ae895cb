"""The bot of a soak run: `python -m bot` itself, with discord.py pointed at the fake Discord.

    python -m bench.soak_bot API_URL GATEWAY_URL

SIGUSR1 makes it return the C heap's free pages to the OS (malloc_trim) and, when
SOAK_CENSUS_DIR is set, write a census of its live Python objects by type there
(census-N.json), so that two idle checkpoints show which objects grew. Everything else
comes from the environment, as in production (DISCORD_TOKEN, DATABASE_PATH,
METRICS_PORT, LOG_FORMAT, BACKUP_HOURS, ...). bench/soak.py starts it as a child process, so
that the memory, files and threads it measures are the bot's alone, not the fake server's.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from types import FrameType

from bot.__main__ import main
from testing.fakediscord.client import ClientPatch


def trim_heap(signum: int, frame: FrameType | None) -> None:
    """SIGUSR1: give the C heap's free pages back to the OS (glibc's malloc_trim), so the soak can
    tell memory the allocator merely keeps (its high-water mark) from memory still in use."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    folder = os.environ.get("SOAK_CENSUS_DIR")
    if folder:
        census = Counter(type(o).__qualname__ for o in gc.get_objects())
        taken = len(list(Path(folder).glob("census-*.json")))
        (Path(folder) / f"census-{taken}.json").write_text(json.dumps(dict(census.most_common(400))))


if __name__ == "__main__":
    api_url, gateway_url = sys.argv[1:3]
    ClientPatch(api_url, gateway_url)  # for the life of the process: nothing to restore
    signal.signal(signal.SIGUSR1, trim_heap)
    sys.exit(main())
