"""Channel preferences (story_threads) layer like generation settings but never reach the engine."""

from __future__ import annotations

import dataclasses

import pytest

from bot.messages import UserError
from bot.preferences import ALL_SETTINGS, PREFERENCE_SETTINGS
from bot.service import Place, Service
from models.params import SETTINGS as GENERATION_SETTINGS
from models.params import GenerationParams
from tests.conftest import GUILD

CHANNEL, THREAD, USER = 10, 11, 100
ADMIN = Place(channel_id=CHANNEL, user_id=USER, guild_id=GUILD, thread_id=THREAD,
              can_manage_channel=True, can_manage_guild=True)


def test_preferences_are_not_generation_settings() -> None:
    fields = {f.name for f in dataclasses.fields(GenerationParams)}
    assert PREFERENCE_SETTINGS and not set(PREFERENCE_SETTINGS) & fields
    assert not set(PREFERENCE_SETTINGS) & set(GENERATION_SETTINGS)
    assert list(ALL_SETTINGS) == [*GENERATION_SETTINGS, *PREFERENCE_SETTINGS]


async def test_story_threads_layers_server_channel_thread_with_sources(service: Service) -> None:
    assert (await service.effective_settings(ADMIN)).sources["story_threads"] == "built-in"
    await service.set_setting(ADMIN, "story_threads", "off", "server")
    here = await service.effective_settings(ADMIN)
    assert here.preferences.story_threads is False and here.sources["story_threads"] == "server"
    await service.set_setting(ADMIN, "story_threads", "on", "thread")
    here = await service.effective_settings(ADMIN)
    assert here.value("story_threads") is True and here.sources["story_threads"] == "thread"
    # The same row holds both kinds; a generation setting set beside it still layers.
    await service.set_setting(ADMIN, "temperature", "1.2", "thread")
    here = await service.effective_settings(ADMIN)
    assert here.params.temperature == 1.2 and here.value("story_threads") is True


async def test_a_preference_is_not_a_per_request_override(service: Service) -> None:
    with pytest.raises(UserError, match="unknown setting"):
        await service.write(ADMIN, "a lamp", {"story_threads": False})
