"""A fake Discord server (REST + gateway on 127.0.0.1) for running the real discord.py client in tests."""

from __future__ import annotations

from .client import FAST_CLIENT_OPTIONS, ClientPatch, running_client
from .interactions import FakeInteraction
from .models import FakeAttachment, FakeChannel, FakeGuild, FakeMember, FakeMessage, FakeRole, FakeUser
from .recorder import RecordedCall, RecordedFile
from .seed import Seed
from .server import DEFAULT_TOKEN, FakeDiscord

__all__ = [
    "DEFAULT_TOKEN",
    "FAST_CLIENT_OPTIONS",
    "ClientPatch",
    "FakeAttachment",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "RecordedCall",
    "RecordedFile",
    "Seed",
    "running_client",
]
