"""The bot of a soak run: `python -m bot` itself, with discord.py pointed at the fake Discord.

    python -m bench.soak_bot API_URL GATEWAY_URL

Everything else comes from the environment, as in production (DISCORD_TOKEN, DATABASE_PATH,
METRICS_PORT, LOG_FORMAT, BACKUP_HOURS, ...). bench/soak.py starts it as a child process, so
that the memory, files and threads it measures are the bot's alone, not the fake server's.
"""

from __future__ import annotations

import sys

from bot.__main__ import main
from testing.fakediscord.client import ClientPatch

if __name__ == "__main__":
    api_url, gateway_url = sys.argv[1:3]
    ClientPatch(api_url, gateway_url)  # for the life of the process: nothing to restore
    sys.exit(main())
