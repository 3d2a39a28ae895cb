"""Every setting a member can set, as one registry: the generation settings that the engine and
the backends see (models.params) and the channel preferences that the service and the fronts
read (here).

`style` is a preference, not a generation setting: it is part of what is asked (the service puts
it into models.base.Prompt beside the topic and the direction), not how tokens are drawn: the
engine hands the Prompt to the backend untouched, and each backend decides how to phrase it (a
chat model's system prompt, a plain LM's header; the LSTM and the Markov chain have no place
for it).

Both kinds are stored together in each scope's settings row and layer the same way:
built-in < server < channel < thread. The engine never sees a preference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from models.params import SETTINGS as GENERATION_SETTINGS
from models.params import GenerationParams, SettingSpec, layer_values
from models.params import parse_setting as parse_in
from models.params import setting_names as names_in

MAX_STYLE_CHARS = 200
PREFERENCE_SETTINGS: dict[str, SettingSpec] = {spec.name: spec for spec in (
    SettingSpec("story_threads", bool, "Open a thread for each new story written in a text channel"),
    SettingSpec("style", str, "The voice: tone, genre, audience, language or point of view (none = off)",
                maximum=MAX_STYLE_CHARS),
    SettingSpec("story_channel", bool, "Every member's message here directs the story's next paragraph"),
)}
ALL_SETTINGS: dict[str, SettingSpec] = {**GENERATION_SETTINGS, **PREFERENCE_SETTINGS}
"""What /settings offers, in the order it shows them."""


@dataclass(frozen=True)
class ChannelPreferences:
    """How a place behaves around the text, not how the text is written."""

    story_threads: bool = True
    """Where /write starts a story in a text channel, open a thread for it."""
    style: str = ""
    """The voice every prompt here asks for ("gothic horror, second person"); empty for none."""
    story_channel: bool = False
    """An endless story: each member's message here is the direction of the next paragraph."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: ChannelPreferences | None = None) -> ChannelPreferences:
        """Layer `data` over `base`; generation settings and unknown or invalid keys are skipped."""
        return layer_values(base or cls(), data, PREFERENCE_SETTINGS)


@dataclass(frozen=True)
class EffectiveSettings:
    """The settings in effect at one place, and where each value comes from ("built-in",
    "server", "channel" or "thread": the layer that set it last)."""

    params: GenerationParams
    preferences: ChannelPreferences = ChannelPreferences()
    sources: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> Any:
        """One setting's value by name, whichever kind it is."""
        holder = self.preferences if name in PREFERENCE_SETTINGS else self.params
        return getattr(holder, name)


def parse_setting(name: str, text: str) -> tuple[str, Any]:
    """A member's `name value` pair as a checked value, for any setting (see models.params)."""
    return parse_in(name, text, ALL_SETTINGS)


def setting_names() -> str:
    """Every setting's name, short (families as `dry_*`), for a refusal."""
    return names_in(ALL_SETTINGS)


def default_value(name: str) -> Any:
    """The built-in value of any setting."""
    return EffectiveSettings(GenerationParams()).value(name)
