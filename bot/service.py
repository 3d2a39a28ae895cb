"""The service layer: everything /write, /continue and /settings do, for every front.

The Discord cogs and the offline console are thin: they turn their input into calls here and
render what comes back. Settings layering, permissions, story history and the engine live here.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from bot.access import AccessControl
from bot.engine.fair_queue import QueueFull, UserBusy
from bot.engine.metrics import EngineStats
from bot.engine.requests import GenerationRequest, RequestHandle
from bot.engine.worker import Engine
from bot.formatting import shown_value
from bot.generation import Generation, GenerationControls, GenerationKind, Generations
from bot.input_checks import (
    check_setting_name,
    clean_style,
    clean_text,
    clean_topic,
    lives_in,
    with_consistent_lengths,
    writable_scope,
)
from bot.limits import COOLDOWN_S, MAX_DIRECTION_CHARS
from bot.messages import (
    FORGOTTEN,
    NEEDS_MESSAGE_CONTENT,
    REGENERATE_NOT_YOURS,
    NoStory,
    PermissionDenied,
    ShuttingDown,
    UserError,
)
from bot.ops.request_ids import request_id_or_new
from bot.place import Place
from bot.preferences import EffectiveSettings, parse_setting
from bot.settings_layers import layered_settings
from bot.storage import Storage, Story, Turn, TurnKind
from bot.story_messages import Forgotten, forget, latest_messages, record_messages
from bot.story_options import StoryGeneration, StoryOptions, kept_over_setting, paragraphs, story_options
from models.base import Prompt
from models.params import SETTINGS as GENERATION_SETTINGS
from models.params import GenerationParams, SettingError, show_value
from models.registry import BUILT_IN_MODELS
from models.story_cast import cast_of

log = logging.getLogger(__name__)

COMPARE_MODELS = ("smollm2", "lstm", "markov")
# Where the whole shutdown waits for finished paragraphs to be stored, at most.
STORE_WAIT_S = 10.0
# Options of one request that go into its prompt rather than its GenerationParams (/write style:).
PROMPT_OPTIONS = ("style",)


class Service:
    """One instance per process, shared by every front."""

    def __init__(self, storage: Storage, engine: Engine, default_model: str,
                 clock: Callable[[], float] = time.monotonic, cooldown_s: float = COOLDOWN_S,
                 extra_models: Sequence[str] = (), access: AccessControl | None = None) -> None:
        self.storage = storage
        # Who may use the bot where, and each server's daily token budget (bot/access.py).
        self.access = access or AccessControl(storage)
        self.engine = engine
        self.default_model = default_model
        # Members choose among these only: any hub id or folder would let anyone start large
        # downloads or probe the host's paths. The owner adds more with ALLOWED_MODELS.
        self.models = tuple(dict.fromkeys((*BUILT_IN_MODELS, default_model, *extra_models)))
        self._clock = clock
        self.cooldown_s = cooldown_s
        self._last_request: dict[int, float] = {}
        self.accepting = True  # False once shutting down: new paragraphs get ShuttingDown
        # Whether the front receives members' message text (Discord's Message Content intent):
        # story channels need it. The Discord front says so once it knows its intents.
        self.reads_member_messages = False
        self.generations = Generations(GenerationControls(engine.cancel, engine.progress), self._store)

    # -- settings -----------------------------------------------------------------------------
    async def settings_for(self, place: Place) -> GenerationParams:
        """The generation settings in effect here: built-in < server < channel < thread."""
        return (await self.effective_settings(place)).params

    async def effective_settings(self, place: Place) -> EffectiveSettings:
        """Every setting in effect here (generation settings and channel preferences), and the
        layer each value comes from."""
        return await layered_settings(self.storage, place, self.default_model, self.models)

    def unsupported(self, params: GenerationParams) -> tuple[str, ...]:
        """The settings in `params` its model cannot honour (a remote server's dialect), for /settings show."""
        return self.engine.unsupported(params)

    async def set_setting(self, place: Place, name: str, value: str, scope: str = "channel") -> str:
        """Change one setting at `scope` (server, channel, thread); returns a confirmation."""
        db_scope, scope_id = writable_scope(place, scope)
        check_setting_name(name)
        if name.strip().lower() == "style":
            value = clean_style(value)
        key, parsed = parse_setting(name, value)
        if key == "story_channel" and parsed and not self.reads_member_messages:
            raise UserError(NEEDS_MESSAGE_CONTENT)
        if key == "model":
            self._check_model(parsed)
        changes: dict[str, Any] = {key: parsed}
        if key in GENERATION_SETTINGS:
            current = await self.settings_for(place)
            changes = with_consistent_lengths(current, changes)
            current.replace(**changes)  # validates cross-field rules such as min <= max
        await self.storage.update_settings(db_scope, scope_id, changes)
        shown = "unset" if parsed is None else parsed
        if parsed == "" or isinstance(parsed, tuple):
            shown = shown_value(parsed)  # "(none)", or phrases joined as members type them
        also = "" if len(changes) == 1 else f" (min_new_tokens lowered to {parsed} to match)"
        return f"{key} is now {shown} for this {scope}{also}." + await kept_over_setting(self.storage, place, key)

    async def reset_settings(self, place: Place, scope: str = "channel") -> str:
        db_scope, scope_id = writable_scope(place, scope)
        removed = await self.storage.reset_settings(db_scope, scope_id)
        return f"Settings for this {scope} are back to defaults." if removed else \
            f"This {scope} had no settings of its own."

    # -- writing ------------------------------------------------------------------------------
    async def write(self, place: Place, topic: str, overrides: dict[str, Any] | None = None) -> Generation:
        """Queue a new paragraph on `topic`; raises UserError for bad input or a full queue."""
        topic = clean_topic(topic)
        options = story_options(None, overrides, 1, self.models)  # a new story keeps them
        params, defaults = await self._params_and_defaults(place, options.overrides)
        await self.access.check_budget(place)
        prompt = Prompt(topic, style=await self.style_here(place, options.overrides))
        return self._submit(place, "write", topic, params, prompt, defaults=defaults, options=options)

    async def write_here(self, place: Place, topic: str, overrides: dict[str, Any] | None = None) -> Generation:
        """/write: in a story's thread the topic steers the story's next paragraph; anywhere
        else (or in a thread without a story) it starts a new story."""
        if place.thread_id is not None:
            try:
                return await self.continue_story(place, topic, overrides)
            except NoStory:
                pass
        return await self.write(place, topic, overrides)

    async def check_can_start(self, place: Place, overrides: dict[str, Any] | None = None,
                              topic: str | None = None) -> None:
        """Raise the UserError that `write` would raise for this topic, these settings, the
        cooldown or a busy queue, before anything is queued: fronts ask first, so that a refusal
        can be private from the start."""
        self._check_accepting()
        if topic is not None and place.thread_id is None:  # in a thread it may steer a story
            clean_topic(topic)
        params = await self._params(place, overrides)
        await self.style_here(place, overrides)
        await self.access.check_budget(place)
        self._check_cooldown(place.user_id)
        try:
            self.engine.check_room(place.user_id, params.model)
        except (QueueFull, UserBusy) as error:
            raise busy(error) from None

    async def continue_story(self, place: Place, direction: str | None = None,
                             overrides: dict[str, Any] | None = None, *, story_id: int | None = None) -> Generation:
        """Queue the next paragraph of the story `story_id` (a button's), else of the story in
        this thread (or this channel's latest), with the options the story keeps (bot.story_options)
        under `overrides`."""
        story = await self.story_here(place, story_id)
        if direction is not None:
            direction = clean_text(direction, "direction", MAX_DIRECTION_CHARS) or None
        turns = await self.storage.turns(story.id)
        options = story_options(story, overrides, paragraphs(turns) + 1, self.models)
        params, defaults = await self._params_and_defaults(place, options.overrides)
        await self.access.check_budget(place)
        prompt = Prompt(story.topic, [turn.text for turn in turns], direction,
                        await self.style_here(place, options.overrides), story.cast)
        return self._submit(place, "continue", story.topic, params, prompt, story, direction, defaults=defaults,
                            options=options)

    async def regenerate(self, place: Place, *, story_id: int | None = None) -> Generation:
        """Write the story's last generated paragraph again (it replaces the old one)."""
        story = await self.story_here(place, story_id)
        if place.user_id != story.author_id and not place.can_manage_messages:
            raise PermissionDenied(REGENERATE_NOT_YOURS)
        turns = await self.storage.turns(story.id)
        if not turns:
            raise NoStory("this story has nothing to regenerate yet")
        options = story_options(story, None, paragraphs(turns), self.models)  # as it was written
        params, defaults = await self._params_and_defaults(place, options.overrides)
        await self.access.check_budget(place)
        last, history = turns[-1], [t.text for t in turns[:-1]]
        # The cast without the paragraph written again: its names are not the story's yet.
        prompt = Prompt(story.topic, history, last.direction, await self.style_here(place, options.overrides),
                        cast_of(history))
        kind: GenerationKind = "continue" if last.kind == "continue" else "write"
        return self._submit(place, kind, story.topic, params, prompt, story, last.direction, replace_last=True,
                            defaults=defaults, options=options)

    async def compare(self, place: Place, topic: str, models: tuple[str, ...] | None = None) -> list[Generation]:
        """The same topic from every backend, each with this channel's other settings. By default
        the built-in backends, then the channel's own model when it is another one (a fine-tuned
        folder the owner offers, say), so that it is compared with them."""
        topic = clean_topic(topic)
        base = await self._params(place, None)
        style = await self.style_here(place)
        if models is None:
            models = COMPARE_MODELS + (() if base.model in COMPARE_MODELS else (base.model,))
        self._check_accepting()
        await self.access.check_budget(place)
        self._check_cooldown(place.user_id)
        generations: list[Generation] = []
        for model in models:
            params = base.replace(model=model, variants=1, strategy="sample" if base.strategy == "beam"
                                  and model == "markov" else base.strategy)
            # The comparison is one request from the member's side: it takes one of their slots.
            request = GenerationRequest(Prompt(topic, style=style), params, fairness_key=str(place.conversation_id),
                                        user_id=None if generations else place.user_id,
                                        request_id=request_id_or_new())
            try:
                handle = self._enqueue(request)
            except UserError:
                for started in generations:
                    started.cancel()
                raise
            generations.append(self.access.counted(self.generations.start(
                Generation(handle, place, "compare", topic, params, title=model, defaults=base))))
        self._last_request[place.user_id] = self._clock()
        return generations

    async def style_here(self, place: Place, overrides: dict[str, Any] | None = None) -> str | None:
        """The voice asked for here: a request's own `style` option (or its story's), else the setting."""
        once = (overrides or {}).get("style")
        if once is not None:
            return clean_style(once) or None
        return (await self.effective_settings(place)).preferences.style or None

    async def story_here(self, place: Place, story_id: int | None = None) -> Story:
        """The story `story_id` when it lives here, else this thread's, else this channel's newest."""
        story = await self.storage.get_story(story_id) if story_id is not None else None
        if story_id is not None and story is None:  # a button's story that is no more
            raise NoStory(FORGOTTEN)
        if story is not None and not lives_in(story, place):
            story = None  # an id from another channel (a forged custom id): look here instead
        if story is None and place.thread_id is not None:
            story = await self.storage.story_for_thread(place.thread_id)
        if story is None:
            story = await self.storage.latest_story(place.conversation_id)
        if story is None:
            raise NoStory("there is no story here yet: start one with /write")
        return story

    async def record_messages(self, turn: Turn, message_ids: list[int]) -> tuple[int, int] | None:
        """Note the messages that show `turn`; the message that should lose its buttons, if any."""
        return await record_messages(self.storage, turn, message_ids)

    async def latest_messages(self, story: Story) -> tuple[int, ...]:
        """The messages that show the story's newest paragraph (empty when not known)."""
        return await latest_messages(self.storage, story)

    async def add_user_turn(self, story: Story, user_id: int, text: str) -> Turn:
        """A member's own message in a story thread becomes part of the story."""
        return await self.storage.add_turn(story.id, kind="user", text=text, settings={}, author_id=user_id)

    async def attach(self, story_id: int, *, thread_id: int | None = None, message_id: int | None = None) -> None:
        """Record where a story lives on Discord (its thread and first message)."""
        await self.storage.set_story_home(story_id, thread_id=thread_id, message_id=message_id)

    async def turns(self, story: Story) -> list[Turn]:
        """Every turn of a story, in order (an export reads them)."""
        return await self.storage.turns(story.id)

    def stats(self) -> EngineStats:
        """How busy the engine is, for /stats and the console."""
        return self.engine.stats()

    async def stored(self) -> dict[str, int]:
        """How much the database holds (rows of settings, stories and turns), for /stats."""
        return await self.storage.counts()

    async def forget(self, place: Place) -> Forgotten:
        """Delete the stories of this channel or thread (bot.story_messages.forget)."""
        return await forget(self.storage, place)

    async def shut_down(self, grace_s: float) -> None:
        """Refuse new paragraphs, end waiting ones with a message now, let running ones finish for
        up to `grace_s` seconds and cut the rest with the same message; then the engine is stopped.
        Returns once every paragraph that finished is stored (storage must stay open till then)."""
        self.accepting = False
        await self.engine.drain(grace_s)
        await self.generations.wait(STORE_WAIT_S)
        await self.access.wait(STORE_WAIT_S)

    # -- internals ----------------------------------------------------------------------------
    async def _params(self, place: Place, overrides: dict[str, Any] | None) -> GenerationParams:
        return (await self._params_and_defaults(place, overrides))[0]

    async def _params_and_defaults(self, place: Place, overrides: dict[str, Any] | None
                                   ) -> tuple[GenerationParams, GenerationParams]:
        """(the settings with `overrides`, the settings in effect here without them)."""
        params = await self.settings_for(place)
        clean = {k: v for k, v in (overrides or {}).items() if v is not None and k not in PROMPT_OPTIONS}
        unknown = [k for k in clean if k not in GENERATION_SETTINGS]
        if unknown:
            raise UserError(f"unknown setting {unknown[0]!r}")
        if "model" in clean:
            self._check_model(clean["model"])
        try:
            return params.replace(**with_consistent_lengths(params, clean)), params
        except SettingError as error:
            raise UserError(str(error)) from None

    def _submit(self, place: Place, kind: GenerationKind, topic: str, params: GenerationParams, prompt: Prompt,
                story: Story | None = None, direction: str | None = None, replace_last: bool = False,
                defaults: GenerationParams | None = None, options: StoryOptions | None = None) -> Generation:
        self._check_accepting()
        self._check_cooldown(place.user_id)
        # A story's turns share a key, so a remote model's replica keeps its context cached.
        request = GenerationRequest(prompt, params, fairness_key=str(place.conversation_id),
                                    user_id=place.user_id, affinity_key=f"story-{story.id}" if story else None,
                                    request_id=request_id_or_new())
        handle = self._enqueue(request)
        log.info("%s in %s queued as request %s (model %s)", kind, place.conversation_id, handle.id,
                 params.model)
        self._last_request[place.user_id] = self._clock()
        return self.access.counted(self.generations.start(
            StoryGeneration(handle, place, kind, topic, params, story, direction, replace_last=replace_last,
                            defaults=defaults, options=options or StoryOptions())))

    def _enqueue(self, request: GenerationRequest) -> RequestHandle:
        """Hand a request to the engine; a full queue or a busy user becomes a friendly UserError."""
        try:
            return self.engine.submit(request)
        except (QueueFull, UserBusy) as error:
            raise busy(error) from None

    def _check_accepting(self) -> None:
        if not self.accepting:
            raise ShuttingDown()

    def _check_model(self, model: object) -> None:
        if model not in self.models:
            raise UserError(f"model must be one of {', '.join(self.models)}, got {show_value(model)}")

    def _check_cooldown(self, user_id: int) -> None:
        last = self._last_request.get(user_id)
        if last is not None and (wait := self.cooldown_s - (self._clock() - last)) > 0:
            raise UserError(f"slow down a little: try again in {math.ceil(wait)} s")

    async def _store(self, generation: Generation, text: str) -> Turn:
        """Store a finished paragraph: a new story, the story's next turn, or its last one again."""
        kind: TurnKind = "continue" if generation.kind == "continue" else "write"
        settings = generation.params.to_dict() | {"model": generation.handle.model_used}
        facts = generation.facts.to_dict() if generation.facts else {}
        kept = generation.options.chosen if isinstance(generation, StoryGeneration) else {}
        place = generation.place
        if generation.replace_last and generation.story is not None:
            return await self.storage.replace_last_turn(generation.story.id, text=text, settings=settings,
                                                        facts=facts)
        if generation.story is None:
            generation.story, turn = await self.storage.start_story(
                guild_id=place.guild_id, channel_id=place.conversation_id, author_id=place.user_id,
                topic=generation.topic, model=generation.handle.model_used or generation.params.model,
                kind=kind, text=text, settings=settings, facts=facts, kept=kept)
            return turn
        return await self.storage.add_turn(generation.story.id, kind=kind, text=text, settings=settings,
                                           author_id=place.user_id, direction=generation.direction, facts=facts,
                                           kept=kept)


def busy(error: QueueFull | UserBusy) -> UserError:
    """A full queue or a busy member, in words for the member."""
    return UserError(f"I'm busy: {error}.")
