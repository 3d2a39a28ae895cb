"""Every limit in one place: Discord's, the queue's and the text's."""

from __future__ import annotations

MESSAGE_LIMIT = 2000  # characters in one Discord message
EDIT_INTERVAL_S = 1.0  # stream edits at most this often per message (Discord rate limits)
WRITING_MARKER = " ✍️…"  # shown at the end of a message while it is still being written
DEFER_DEADLINE_S = 3.0  # Discord drops an interaction not answered within this
INTERACTION_TOKEN_S = 15 * 60  # after this, follow-ups fail: continue in the channel instead
QUEUE_POSITION_INTERVAL_S = 3.0  # how often a waiting message refreshes its queue position

MAX_TOPIC_CHARS = 300  # longer topics are refused with a message (they are prompts, not stories)
MAX_DIRECTION_CHARS = 200
THREAD_NAME_CHARS = 90  # Discord allows 100
COOLDOWN_S = 3.0  # per user, between two /write or /continue
SHUTDOWN_GRACE_S = 5  # on SIGTERM, running paragraphs get this long to finish before they are cut
SHUTDOWN_SHOW_S = 10.0  # then their messages get this long to show how they ended, before logout
PRUNE_INTERVAL_S = 3600.0  # with RETENTION_DAYS set, old history is looked for this often
# Rows in one decode step (the engine's default and MAX_BATCH's). On 2 AVX2 cores SmolLM2
# decodes 64 rows in 1.3x the time of 32 (207 against 132 tokens/s).
DEFAULT_MAX_BATCH = 64
