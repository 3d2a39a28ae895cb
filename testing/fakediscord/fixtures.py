"""pytest fixtures: a started, seeded FakeDiscord with discord.py pointed at it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest_asyncio

from .server import DEFAULT_TOKEN, FakeDiscord


@contextlib.asynccontextmanager
async def started_fake_discord(token: str = DEFAULT_TOKEN) -> AsyncIterator[FakeDiscord]:
    """A seeded, listening FakeDiscord with discord.py's URLs pointed at it, undone on exit."""
    fake = FakeDiscord(token)
    fake.seed_default()
    await fake.start()
    try:
        with fake.point_client_here():
            yield fake
    finally:
        await fake.stop()


@pytest_asyncio.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """The standard fake server (``fake_discord.seed`` holds the guild, channels, roles, users)."""
    async with started_fake_discord() as fake:
        yield fake
