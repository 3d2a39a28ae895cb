"""The one definition of generation settings: defaults, ranges, choices and validation.

What the engine and every backend see (like vLLM's SamplingParams). Channel preferences that
only the fronts read (bot.preferences) use the same SettingSpec and checks, are stored beside
these in each scope's row, and layer the same way.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

STRATEGIES = ("greedy", "beam", "top_k", "top_p", "sample")
"""greedy: argmax; beam: beam search; top_k / top_p: sampling with only that filter;
sample: temperature sampling with both top-k and top-p filters."""


class SettingError(ValueError):
    """A setting value outside its documented range or choices; the message is for users."""


@dataclass(frozen=True)
class SettingSpec:
    """How one setting is typed, bounded and described."""

    name: str
    kind: type
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False  # None is a valid value ("unset")

    def range_text(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.kind is bool:
            return "on or off"
        if self.kind is str:
            return f"text of at most {int(self.maximum or 0)} characters"
        if self.kind is tuple:
            return (f"up to {MAX_PHRASES} phrases separated by {PHRASE_SEPARATOR!r}, each of at most "
                    f"{int(self.maximum or 0)} characters")
        return f"{_fmt(self.minimum)} to {_fmt(self.maximum)}"


MAX_PHRASES = 20  # banned phrases per place: a community's clichés, not a word filter
PHRASE_SEPARATOR = ";"  # phrases may hold commas ("well, well"), rarely semicolons
CLEARED = ("", "none", "(none)", "off")  # what a member types to clear a list of phrases
MENTION_SYNTAX = re.compile(r"<[@#][!&]?\d+>|@(everyone|here)\b|<a?:\w+:\d+>")
MAX_SHOWN_DIGITS = 16  # a longer number is shown in scientific notation


def _fmt(value: float | None) -> str:
    """A bound or a user's number as text: 2 rather than 2.0, and never a wall of digits."""
    if value is None:
        return "?"
    if isinstance(value, float):  # repr switches to scientific notation from 1e16 on
        return str(int(value)) if value.is_integer() and abs(value) < 10**MAX_SHOWN_DIGITS else str(value)
    text = str(value)
    if len(text) <= MAX_SHOWN_DIGITS:
        return text
    try:
        return f"{float(value):g}"
    except OverflowError:  # beyond any float
        return f"a number of {len(text)} digits"


# Ranges are what the backends handle sensibly and what a Discord message can hold.
_SPECS: tuple[SettingSpec, ...] = (
    SettingSpec("model", str, "Model: smollm2 (embedded), lstm, markov, a hub id or a folder", maximum=200),
    SettingSpec("strategy", str, "Decoding strategy", choices=STRATEGIES),
    SettingSpec("temperature", float, "Sampling temperature (higher is wilder)", 0.05, 2.0),
    SettingSpec("top_k", int, "Keep only the k most likely tokens (0 = off)", 0, 1000),
    SettingSpec("top_p", float, "Keep the smallest set of tokens with this much probability", 0.01, 1.0),
    SettingSpec("num_beams", int, "Beams for beam search", 2, 8),
    SettingSpec("no_repeat_ngram_size", int, "Never repeat an n-gram of this size; long words still may (0 = off)", 0, 10),
    SettingSpec("repetition_penalty", float, "Penalty on tokens already used (1 = off)", 1.0, 2.0),
    SettingSpec("dry_multiplier", float, "DRY: penalty on extending a repeat of the story so far (0 = off)", 0.0, 5.0),
    SettingSpec("dry_base", float, "DRY: how fast the penalty grows with the repeat's length", 1.0, 4.0),
    SettingSpec("dry_allowed_length", int, "DRY: repeats this many tokens long are free", 1, 20),
    SettingSpec("dry_penalty_last_n", int, "DRY: tokens of the story it looks back over (-1 = all, 0 = off)",
                -1, 65536),
    SettingSpec("max_new_tokens", int, "Most tokens to write", 8, 512),
    SettingSpec("min_new_tokens", int, "Fewest tokens before the paragraph may end", 0, 256),
    SettingSpec("variants", int, "How many versions to write", 1, 4),
    SettingSpec("seed", int, "Random seed for repeatable text (unset = random)", 0, 2**31 - 1, optional=True),
    SettingSpec("stop_at_paragraph", bool, "Stop at the end of the first paragraph"),
    SettingSpec("stop", str, "Stop when this text appears (empty = none)", maximum=40),
    SettingSpec("retell_check", bool, "Write a continuation's first sentence again when it retells an "
                "earlier paragraph"),
    SettingSpec("banned_phrases", tuple, "Phrases never written, separated by ';' (the built-in ones always "
                "apply)", maximum=40),
)
SETTINGS: dict[str, SettingSpec] = {spec.name: spec for spec in _SPECS}

_TRUE = {"on", "true", "yes", "1", "enable", "enabled"}
_FALSE = {"off", "false", "no", "0", "disable", "disabled"}


@dataclass(frozen=True)
class GenerationParams:
    """Settings for one generation. Ranges live in `SETTINGS`; `validate` enforces them."""

    model: str = "smollm2"
    """Backend name or checkpoint: smollm2, lstm, markov, a hub id (gpt2) or a local folder."""
    strategy: str = "sample"
    """One of STRATEGIES."""
    temperature: float = 0.7
    """Divides the logits before sampling; ignored by greedy and beam."""
    top_k: int = 40
    """Sample among the k most likely tokens; 0 disables the filter."""
    top_p: float = 0.9
    """Nucleus sampling: the smallest set of tokens whose probability reaches top_p."""
    num_beams: int = 4
    """Beams kept by beam search."""
    no_repeat_ngram_size: int = 2
    """An n-gram of this size never appears twice; 0 disables."""
    repetition_penalty: float = 1.1
    """CTRL-style penalty on every token already in the text; 1.0 disables."""
    dry_multiplier: float = 0.8
    """DRY (models.dry), for continuations: a token that would extend a repeat of n tokens of the
    story so far (prompt included) loses dry_multiplier * dry_base ** (n - dry_allowed_length) of
    its logit; 0 disables. A new story's first paragraph is written without it."""
    dry_base: float = 1.75
    """Growth of the DRY penalty per token of repeat."""
    dry_allowed_length: int = 2
    """Repeats up to this many tokens are never penalised (names, short phrases)."""
    dry_penalty_last_n: int = -1
    """How many of the last tokens DRY looks over; -1 the whole context, 0 disables."""
    max_new_tokens: int = 160
    """Upper bound on generated tokens."""
    min_new_tokens: int = 40
    """End of text and stop conditions are ignored before this many tokens."""
    variants: int = 1
    """How many independent versions to write for one request."""
    seed: int | None = None
    """Same seed, settings and prompt give the same text when run alone."""
    stop_at_paragraph: bool = True
    """Stop at the first blank line after min_new_tokens."""
    stop: str = ""
    """Stop when this string appears (not included in the output)."""
    retell_check: bool = True
    """Hold a continuation's first sentence until complete and write it again (up to 3 tries,
    then the least retelling) when it retells an earlier paragraph (bot/engine/retell.py). On:
    bench.story's echoes fell from 25% to 14% and retellings from 7% to 4%."""
    banned_phrases: tuple[str, ...] = ()
    """A place's own phrases never to write (a community's clichés), besides the built-in list
    (bot.engine.banned_phrases): a row that writes one rewinds to where it began and writes on
    another way. Case does not matter; one that starts with a capital letter is banned only where
    it starts a sentence ("The story" but not "told the story")."""
    ignore_eos: bool = False
    """Write on through end of text and stop strings to max_new_tokens (benchmarks; not a user
    setting: it has no SettingSpec, so no front offers it and nothing stores it)."""

    def validate(self) -> GenerationParams:
        """Raise SettingError naming the first bad setting; return self when all are valid."""
        for spec in _SPECS:
            check_value(spec, getattr(self, spec.name))
        if self.min_new_tokens > self.max_new_tokens:
            raise SettingError(
                f"min_new_tokens ({self.min_new_tokens}) must not exceed "
                f"max_new_tokens ({self.max_new_tokens})"
            )
        return self

    def replace(self, **changes: Any) -> GenerationParams:
        """A validated copy with `changes` applied, each coerced to its setting's type (8.0 -> 8)."""
        coerced = {k: check_value(SETTINGS[k], v) if k in SETTINGS else v for k, v in changes.items()}
        return dataclasses.replace(self, **coerced).validate()

    @property
    def do_sample(self) -> bool:
        return self.strategy in ("top_k", "top_p", "sample")

    @property
    def effective_top_k(self) -> int:
        """top_k as the strategy applies it (0 = no filter)."""
        return self.top_k if self.strategy in ("top_k", "sample") else 0

    @property
    def effective_top_p(self) -> float:
        """top_p as the strategy applies it (1.0 = no filter)."""
        return self.top_p if self.strategy in ("top_p", "sample") else 1.0

    def to_dict(self) -> dict[str, Any]:
        """The user settings as plain JSON-able values."""
        return {spec.name: getattr(self, spec.name) for spec in _SPECS}

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: GenerationParams | None = None) -> GenerationParams:
        """Layer `data` over `base`, skipping unknown or invalid keys so an old row never breaks a read."""
        params = layer_values(base or cls(), data, SETTINGS)
        if params.min_new_tokens > params.max_new_tokens:
            params = dataclasses.replace(params, min_new_tokens=params.max_new_tokens)
        return params


Settings = TypeVar("Settings")


def layer_values(base: Settings, data: Mapping[str, Any], specs: Mapping[str, SettingSpec]) -> Settings:
    """A copy of the dataclass `base` with the names of `specs` found in `data` applied; unknown
    names and values that fail their check are skipped (a stored row may predate a range change)."""
    for key, value in data.items():
        spec = specs.get(key)
        if spec is None:
            continue
        try:
            base = dataclasses.replace(base, **{key: check_value(spec, value)})  # type: ignore[type-var]
        except SettingError:
            continue
    return base


def check_value(spec: SettingSpec, value: Any) -> Any:
    """Return `value` coerced to the setting's type, or raise SettingError that names it."""
    if value is None:
        if spec.optional:
            return None
        raise SettingError(f"{spec.name} must be {spec.range_text()}, got nothing")
    if spec.kind is bool:
        if isinstance(value, bool):
            return value
        raise SettingError(f"{spec.name} must be on or off, got {value!r}")
    if spec.kind is tuple:
        return check_phrases(spec, value)
    if spec.kind is str:
        if not isinstance(value, str):
            raise SettingError(f"{spec.name} must be text, got {value!r}")
        if spec.choices:
            # "Greedy", "top-p" and "top p" all mean top_p: people type names as they say them.
            canonical = value.strip().lower().replace("-", "_").replace(" ", "_")
            if canonical not in spec.choices:
                raise SettingError(f"{spec.name} must be {spec.range_text()}, got {show_value(value)}")
            return canonical
        if spec.maximum is not None and len(value) > spec.maximum:
            raise SettingError(f"{spec.name} must be {spec.range_text()}, got {len(value)} characters")
        # Model names and stop strings are shown in replies and stored: nothing invisible (control,
        # zero-width, direction marks) and no lone surrogates, which SQLite cannot even encode.
        if not value.isprintable():
            raise SettingError(f"{spec.name} must not contain control or invisible characters")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingError(f"{spec.name} must be a number from {spec.range_text()}, got {show_value(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SettingError(f"{spec.name} must be a number from {spec.range_text()}, got {value}")
    if spec.kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise SettingError(f"{spec.name} must be a whole number from {spec.range_text()}, got {value}")
        value = int(value)
    else:
        value = float(value)
    if (spec.minimum is not None and value < spec.minimum) or (
        spec.maximum is not None and value > spec.maximum
    ):
        raise SettingError(f"{spec.name} must be in {spec.range_text()}, got {_fmt(value)}")
    return value


def check_phrases(spec: SettingSpec, value: Any) -> tuple[str, ...]:
    """A list of phrases (text separated by PHRASE_SEPARATOR, or a stored list) as a checked
    tuple: each stripped, none empty or repeated, at most MAX_PHRASES of at most `maximum`
    characters, nothing invisible and no mention syntax (a phrase is shown in /settings)."""
    if isinstance(value, str):
        value = [] if value.strip().lower() in CLEARED else value.split(PHRASE_SEPARATOR)
    if not isinstance(value, (list, tuple)) or not all(isinstance(p, str) for p in value):
        raise SettingError(f"{spec.name} must be {spec.range_text()}, got {show_value(value)}")
    phrases = tuple(dict.fromkeys(" ".join(p.split()) for p in value if p.strip()))
    if len(phrases) > MAX_PHRASES:
        raise SettingError(f"{spec.name} takes at most {MAX_PHRASES} phrases, got {len(phrases)}")
    for phrase in phrases:
        if len(phrase) > (spec.maximum or 0):
            raise SettingError(f"each of {spec.name} must be at most {int(spec.maximum or 0)} characters, got "
                               f"{len(phrase)} in {show_value(phrase)}")
        if not phrase.isprintable():
            raise SettingError(f"{spec.name} must not contain control or invisible characters")
        if MENTION_SYNTAX.search(phrase):
            raise SettingError(f"{spec.name} must not contain mentions (@everyone, @here, <@...>), got "
                               f"{show_value(phrase)}")
    return phrases


def parse_setting(name: str, text: str, settings: Mapping[str, SettingSpec] = SETTINGS) -> tuple[str, Any]:
    """Parse a user's `name value` pair (console or Discord text) into a checked value."""
    key = name.strip().lower().replace("-", "_")
    spec = settings.get(key)
    if spec is None:
        raise SettingError(f"unknown setting {show_value(name)}; settings: {setting_names(settings)}")
    raw = text.strip()
    if spec.optional and raw.lower() in ("", "none", "unset", "random", "off"):
        return key, None
    if spec.kind is bool:
        if raw.lower() in _TRUE:
            return key, True
        if raw.lower() in _FALSE:
            return key, False
        raise SettingError(f"{key} must be on or off, got {show_value(raw)}")
    if spec.kind in (str, tuple):
        return key, check_value(spec, raw)
    try:
        number: float = float(raw)
    except ValueError:
        raise SettingError(f"{key} must be a number from {spec.range_text()}, got {show_value(raw)}") from None
    return key, check_value(spec, number)


def setting_names(settings: Mapping[str, SettingSpec] = SETTINGS) -> str:
    """The settings' names for a refusal, short: a family of two or more that share a prefix
    (dry_multiplier, dry_base, ...) is named once as `dry_*`, unless the prefix is a setting too
    (stop beside stop_at_paragraph)."""
    families: dict[str, list[str]] = {}
    for name in settings:
        families.setdefault(name.split("_")[0], []).append(name)
    shown: list[str] = []
    for name in settings:
        prefix = name.split("_")[0]
        family = families[prefix]
        if len(family) < 2 or prefix in family:
            shown.append(name)
        elif name == family[0]:
            shown.append(name.split("_")[0] + "_*")
    return ", ".join(shown)


def show_value(value: Any) -> str:
    """A user's value as a refusal quotes it: escaped, and short whatever was typed."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
