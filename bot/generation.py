"""The life of one paragraph after the engine takes it: follow, store, and tell the front.

The service starts a `Generation` and owns it until the end: a task of its own reads the
engine's events, stores the turn when the engine finishes, and forwards every event to
whichever front is showing it. A front that stops reading (a deleted message, a closed
console) changes nothing about what is saved. "done" reaches a front only after the
paragraph is stored; when the database cannot take it, the front gets an "error" instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from bot.engine.requests import TERMINAL, Event, Failure, Progress, RequestHandle
from bot.messages import (
    FELL_BACK,
    GENERATION_FAILED,
    NO_MODEL,
    NOT_SAVED,
    NOT_SUPPORTED,
    REMOTE_BUSY,
    REMOTE_CUT,
    REMOTE_DOWN,
    REMOTE_KEY,
    SHUTTING_DOWN,
    STEP_FAILED,
)
from bot.paragraph_facts import ParagraphFacts, changed_settings
from bot.place import Place
from bot.storage import StorageUnavailable, Story, Turn
from models.params import GenerationParams

log = logging.getLogger(__name__)

GenerationKind = Literal["write", "continue", "compare"]


@dataclass
class Generation:
    """A running /write, /continue or /compare entry: its events, its place in line, Stop.

    `turn` is the stored paragraph once it is saved (never for /compare)."""

    handle: RequestHandle
    place: Place
    kind: GenerationKind
    topic: str
    params: GenerationParams
    story: Story | None = None
    direction: str | None = None
    replace_last: bool = False
    title: str = ""
    """Shown above the text (/compare names each model)."""
    defaults: GenerationParams | None = None
    """The settings in effect where it was asked for: the paragraph's facts list what differs."""
    turn: Turn | None = field(default=None, init=False)
    facts: ParagraphFacts | None = field(default=None, init=False)
    """How the paragraph (the first variant: the one stored) was written, once it is done (set
    before the turn is stored)."""
    variant_facts: tuple[ParagraphFacts, ...] = field(default=(), init=False)
    """How each variant was written (its own seed and cut), once done; fronts show each."""
    _controls: GenerationControls | None = field(default=None, init=False, repr=False)
    _events: asyncio.Queue[Event | BaseException] = field(default_factory=asyncio.Queue, init=False,
                                                          repr=False)
    _final: asyncio.Future[Event] | None = field(default=None, init=False, repr=False)
    _discarded: bool = field(default=False, init=False, repr=False)

    async def events(self) -> AsyncIterator[Event]:
        """The events in order, the terminal one last. "done" comes only once the turn is
        stored; an unexpected failure while storing is raised here, to the front."""
        while True:
            item = await self._events.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if item.kind in TERMINAL:
                return

    async def result(self) -> Event:
        """The terminal event, once the turn is stored (or could not be)."""
        if self._final is None:
            raise RuntimeError("the generation was never started")
        return await asyncio.shield(self._final)

    def position(self) -> int | None:
        """1-based place in the line of requests waiting behind others, or None if not waiting."""
        return self.progress().position

    def progress(self) -> Progress:
        """Waiting (and where), loading the model, starting or writing (and how far)."""
        return self._controls.progress(self.handle) if self._controls else Progress("starting")

    def facts_now(self, stopped: bool = False, variant: int = 0) -> ParagraphFacts:
        """How a variant was written: model, strategy, settings that differ, seed, cut."""
        handle = self.handle
        # Greedy and beam search draw nothing: a seed would only mislead there. Variant v draws
        # with seed + v (the engine's rule), so each variant can be written again on its own.
        seed = handle.seed_used
        drew = self.params.strategy not in ("greedy", "beam")
        return ParagraphFacts(model=handle.model_used or self.params.model, strategy=self.params.strategy,
                              seed=seed + variant if drew and seed is not None else None,
                              changed=changed_settings(self.params, self.defaults),
                              cut_at=handle.cuts.get(variant), stopped=stopped)

    def _record_facts(self, stopped: bool = False) -> None:
        self.variant_facts = tuple(self.facts_now(stopped, v) for v in range(self.params.variants))
        self.facts = self.variant_facts[0]

    def cancel(self) -> None:
        """Stop writing; what was written so far is kept (stored as a stopped paragraph)."""
        if self._controls is not None:
            self._controls.cancel(self.handle)

    def discard(self) -> None:
        """Stop writing and keep nothing: the paragraph's message is gone, so no story goes on
        from text nobody can see any more."""
        self._discarded = True
        self.cancel()


@dataclass(frozen=True)
class GenerationControls:
    """What a generation may ask of the engine about its own request."""

    cancel: Callable[[RequestHandle], None]
    progress: Callable[[RequestHandle], Progress]


class Generations:
    """The generations the service is following: started here, stored here, awaited on shutdown."""

    def __init__(self, controls: GenerationControls,
                 store: Callable[[Generation, str], Awaitable[Turn]]) -> None:
        self._controls = controls
        self._store = store
        self._following: set[asyncio.Task[Event]] = set()
        # (conversation, model, settings) already told they are not supported: said once, not every time
        self._told_unsupported: set[tuple[int, str, tuple[str, ...]]] = set()

    def start(self, generation: Generation) -> Generation:
        """Follow `generation` from now until its turn is stored, whoever reads its events."""
        generation._controls = self._controls
        task = asyncio.create_task(self._follow(generation), name=f"generation-{generation.handle.id}")
        generation._final = asyncio.ensure_future(task)
        self._following.add(task)
        task.add_done_callback(self._following.discard)
        return generation

    async def wait(self, timeout: float | None = None) -> None:
        """Wait until every followed generation has ended and been stored."""
        if self._following:
            await asyncio.wait(list(self._following), timeout=timeout)

    def _once(self, generation: Generation, event: Event) -> Event:
        """A "started" event names unsupported settings only the first time for this conversation."""
        if event.kind != "started" or not event.unsupported:
            return event
        told = (generation.place.conversation_id, generation.handle.model_used or "", event.unsupported)
        if told in self._told_unsupported:
            return dataclasses.replace(event, unsupported=())
        self._told_unsupported.add(told)
        return event

    async def _follow(self, generation: Generation) -> Event:
        async for engine_event in generation.handle.events():
            event = worded(self._once(generation, engine_event), generation.handle.model_used or "")
            kept = ""
            if event.kind == "done":
                generation._record_facts()
                kept = event.text
            elif event.kind == "cancelled" and not generation._discarded and (written := generation.handle.texts.get(0, "")).strip():
                # Stop keeps what was written: it is stored, marked stopped, and goes on from there.
                generation._record_facts(stopped=True)
                kept = written
            if kept.strip() and generation.kind != "compare":
                try:
                    event = await self._stored(generation, event, kept)
                except Exception as error:  # the front that reads says so, with an error id
                    log.warning("storing a paragraph for %s failed: %r", generation.place.conversation_id, error)
                    generation._events.put_nowait(error)
                    return Event("error", text=str(error))
            generation._events.put_nowait(event)
            if event.kind in TERMINAL:
                return event
        raise AssertionError("unreachable: a request always ends with a terminal event")

    async def _stored(self, generation: Generation, ending: Event, text: str) -> Event:
        """Store the paragraph that `ending` ends ("done", or "cancelled" by Stop); `ending` as
        it is once stored, or an "error" saying the database could not take it."""
        try:
            generation.turn = await self._store(generation, text)
        except StorageUnavailable as error:
            log.warning("a paragraph for %s was not saved: %s", generation.place.conversation_id, error)
            return Event("error", text=NOT_SAVED.format(reason=error))
        return ending


def worded(event: Event, model: str = "") -> Event:
    """The engine's event as a front shows it: failures, fallbacks and settings a model cannot
    honour in the users' words."""
    if event.kind == "started" and (event.fallback is not None or event.unsupported):
        notes = []
        if event.fallback is not None:
            fallback = event.fallback
            notes.append(FELL_BACK.format(wanted=fallback.wanted, reason=fallback.reason, used=fallback.used))
        if event.unsupported:
            notes.append(NOT_SUPPORTED.format(model=model, names=", ".join(shown_setting(n) for n in event.unsupported)))
        return Event("started", "; ".join(notes))
    if event.kind == "error":
        return Event("error", failure_message(event.failure, event.text), event.variant, event.reason,
                     event.failure)
    return event


def failure_message(failure: Failure | None, detail: str) -> str:
    """One sentence for a user about why their paragraph was not written."""
    if failure is Failure.SHUTTING_DOWN:
        return SHUTTING_DOWN
    if failure is Failure.STEP_FAILED:
        return STEP_FAILED.format(reason=detail)
    if failure is Failure.NO_MODEL:
        return NO_MODEL.format(reason=detail)
    remote = {Failure.REMOTE_DOWN: REMOTE_DOWN, Failure.REMOTE_BUSY: REMOTE_BUSY, Failure.REMOTE_KEY: REMOTE_KEY}
    if failure in remote:
        return remote[failure].format(model=detail)
    if failure is Failure.REMOTE_CUT:
        return REMOTE_CUT.format(reason=detail)
    return detail or GENERATION_FAILED


def shown_setting(name: str) -> str:
    """A setting as a note names it: beam search for the strategy, the DRY family as dry_*."""
    return {"strategy": "beam search (greedy instead)", "dry_multiplier": "dry_*"}.get(name, name)
