"""The settings in effect at a place: built-in < server < channel < thread, each value with the
layer it comes from (generation settings and channel preferences alike)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.input_checks import SCOPE_NAMES
from bot.place import Place
from bot.preferences import ALL_SETTINGS, ChannelPreferences, EffectiveSettings
from bot.storage import Scope
from bot.storage.settings import SettingsTable
from models.params import GenerationParams

SOURCE_NAMES = {db_scope: scope for scope, db_scope in SCOPE_NAMES.items()}


async def layered_settings(storage: SettingsTable, place: Place, default_model: str,
                           offered: Sequence[str]) -> EffectiveSettings:
    """Layer the stored rows of the place's server, channel and thread over the built-in values;
    a model no longer `offered` falls back to `default_model`."""
    params = GenerationParams(model=default_model)
    preferences = ChannelPreferences()
    sources = dict.fromkeys(ALL_SETTINGS, "built-in")
    layers: list[tuple[Scope, int | None]] = [("guild", place.guild_id), ("channel", place.channel_id),
                                            ("thread", place.thread_id)]
    for scope, scope_id in layers:
        if scope_id is not None:
            stored = await storage.get_settings(scope, scope_id)
            params = GenerationParams.from_dict(stored, params)
            preferences = ChannelPreferences.from_dict(stored, preferences)
            sources.update(dict.fromkeys((name for name in stored if name in ALL_SETTINGS), SOURCE_NAMES[scope]))
    if params.model not in offered:  # chosen when the owner still offered it
        params = params.replace(model=default_model)
        sources["model"] = "built-in"
    return EffectiveSettings(params, preferences, sources)
