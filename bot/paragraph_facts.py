"""What a paragraph was written with and how it ended, so that it can be trusted and reproduced:
the model, the strategy, the style asked for with an option, which of these the story kept from
an earlier paragraph (bot.story_options), the settings that differed from the channel's, the seed
actually used (`/settings set seed` with it writes the same paragraph again) and whether the
length limit cut it. Both fronts and the export show `facts_text`; the turn stores `to_dict`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from models.params import SETTINGS, GenerationParams

# Always shown on their own, so never listed among the settings that differ.
_SHOWN_APART = ("model", "strategy", "seed")
FOOTER_STYLE_CHARS = 40  # a style is up to 200 characters: the footer shows its start


@dataclass(frozen=True)
class ParagraphFacts:
    """How one paragraph was written; see the module docstring."""

    model: str
    strategy: str
    seed: int | None = None
    """The seed the engine drew with (None for beam search, which draws nothing)."""
    changed: dict[str, Any] = field(default_factory=dict)
    """Settings of this paragraph that differ from the channel's (a /write option, say)."""
    cut_at: int | None = None
    """Tokens written when the length limit cut the paragraph; None if it ended by itself."""
    stopped: bool = False
    """Stop was clicked: the paragraph is what was written until then."""
    style: str | None = None
    """The voice asked for with an option (this paragraph's own, or kept by the story); None when
    it came from the settings or there was none."""
    kept: dict[str, int] = field(default_factory=dict)
    """The options (model, strategy, style) taken from the story rather than given this time,
    each with the paragraph it was chosen at (1: the story's start)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParagraphFacts | None:
        """The facts stored with a turn, or None for a turn without them (older, or a member's)."""
        if not data.get("model"):
            return None
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


def changed_settings(params: GenerationParams, defaults: GenerationParams | None) -> dict[str, Any]:
    """The settings of `params` that differ from `defaults` (the channel's), in SETTINGS order."""
    if defaults is None:
        return {}
    return {name: getattr(params, name) for name in SETTINGS
            if name not in _SHOWN_APART and getattr(params, name) != getattr(defaults, name)}


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return "(none)" if value in ("", None) else str(value)


def clipped(text: str, limit: int = FOOTER_STYLE_CHARS) -> str:
    """`text`, or its start with "…" when longer than `limit` (a style in a short line)."""
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _kept(facts: ParagraphFacts, name: str, shown: str) -> str:
    """`shown`, and where the story kept it from when it did."""
    since = facts.kept.get(name)
    if since is None:
        return shown
    where = "the story's start" if since <= 1 else f"paragraph {since}"
    return f"{shown} (kept from {where})"


def facts_text(facts: ParagraphFacts) -> str:
    """One short line: "smollm2 · sample · temperature 1.2 · seed 1234 · cut at 120 tokens", or
    for a story started with options: "llamacpp (kept from the story's start) · sample · style
    noir (kept from the story's start) · seed 1234"."""
    parts = [_kept(facts, "model", facts.model), _kept(facts, "strategy", facts.strategy)]
    if facts.style:
        parts.append(_kept(facts, "style", f"style {clipped(facts.style)}"))
    parts += [f"{name} {_shown(value)}" for name, value in facts.changed.items()]
    if facts.seed is not None:
        parts.append(f"seed {facts.seed}")
    if facts.cut_at is not None:
        parts.append(f"cut at {facts.cut_at} tokens")
    if facts.stopped:
        parts.append("stopped")
    return " · ".join(parts)
