"""A fake OpenAI-compatible server on loopback (aiohttp), for tests and the remote benchmark:
`/v1/models`, streaming chat and completions, every request body recorded, faults injectable."""

from .server import DEFAULT_TEXT, FakeOpenAI, Fault, Recorded

__all__ = ["DEFAULT_TEXT", "FakeOpenAI", "Fault", "Recorded"]
