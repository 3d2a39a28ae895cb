"""What a story keeps from the options its paragraphs were asked for with.

A story started with a one-off option (`/write topic: ... model: llamacpp style: noir`) goes on
with it: its continuations (/continue, the Continue button, a /write in its thread, members'
lines in a story channel) and Regenerate are written with the same model, strategy and style,
over the settings of the server, channel and thread, until a member gives a continuation an
option of their own (`/continue model: smollm2`): the story keeps that one from then on. A
length asked for once stays with its paragraph: it sizes one paragraph, not the story. A branch
keeps what its story kept at the paragraph it branched from (bot.storage.branches). Each
paragraph's footer says which options it took from the story (bot.paragraph_facts).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.generation import Generation
from bot.input_checks import clean_style
from bot.messages import KEPT_OVER_SETTING
from bot.paragraph_facts import ParagraphFacts, clipped
from bot.place import Place
from bot.storage import Storage, Story, Turn

log = logging.getLogger(__name__)

KEPT_OPTIONS = ("model", "strategy", "style")


@dataclass(frozen=True)
class StoryOptions:
    """The options one paragraph of a story is written with, and where they came from."""

    overrides: dict[str, Any] = field(default_factory=dict)
    """Its own options over those the story keeps: what the service lays over the settings here."""
    chosen: dict[str, Any] = field(default_factory=dict)
    """Its own options that the story keeps from now on (new ones, or changed): stored with it."""
    kept: dict[str, int] = field(default_factory=dict)
    """The options it takes from the story, each with the paragraph it was chosen at (1: the start)."""

    def marked(self, facts: ParagraphFacts, model_asked: str) -> ParagraphFacts:
        """`facts` saying which options came from the story, and the style asked for by an option.
        A kept model that was not available (the default wrote instead) is not marked kept."""
        kept = {name: since for name, since in self.kept.items() if name != "model" or facts.model == model_asked}
        return dataclasses.replace(facts, style=self.overrides.get("style") or None, kept=kept)


def story_options(story: Story | None, overrides: dict[str, Any] | None, paragraph: int,
                  offered_models: Sequence[str]) -> StoryOptions:
    """The options of paragraph `paragraph` (1-based among the generated ones) of `story` (None:
    a new story's first), asked for with `overrides` (None values are options not given)."""
    own = {name: value for name, value in (overrides or {}).items() if value is not None}
    if "style" in own:
        own["style"] = clean_style(own["style"])
    chosen = {name: own[name] for name in KEPT_OPTIONS if name in own}
    if story is None:
        return StoryOptions(own, chosen)
    kept, since = story.kept, story.kept_since
    if "model" in kept and kept["model"] not in offered_models:
        # The owner took it away (ALLOWED_MODELS, a remote server's entry): the story goes on with
        # the model in effect here rather than refusing every paragraph.
        log.info("story %s kept model %s, which is no longer offered", story.id, kept.pop("model"))
    inherited = {name: value for name, value in kept.items() if name not in own}
    changed = {name: value for name, value in chosen.items() if kept.get(name) != value}
    # Written again, a paragraph's own choice is its own, not one kept from before it.
    return StoryOptions({**inherited, **own}, changed,
                        {name: since[name] for name in inherited if since[name] < paragraph})


async def kept_over_setting(storage: Storage, place: Place, name: str) -> str:
    """What /settings set adds in a story's thread when the story keeps its own `name` (the
    setting does not change it there), else nothing."""
    if name not in KEPT_OPTIONS or place.thread_id is None:
        return ""
    story = await storage.story_for_thread(place.thread_id)
    if story is None or name not in story.kept:
        return ""
    value = clipped(str(story.kept[name])) or "none"
    return KEPT_OVER_SETTING.format(name=name, value=value, since=story.kept_since[name])


def paragraphs(turns: Sequence[Turn]) -> int:
    """How many of `turns` the bot wrote (members' own lines are not paragraphs of it)."""
    return sum(1 for turn in turns if turn.kind != "user")


@dataclass
class StoryGeneration(Generation):
    """A paragraph of a story (not a /compare entry): a Generation that knows its story options,
    so that its facts say which ones the story kept."""

    options: StoryOptions = field(default_factory=StoryOptions)

    def facts_now(self, stopped: bool = False, variant: int = 0) -> ParagraphFacts:
        return self.options.marked(super().facts_now(stopped, variant), self.params.model)
