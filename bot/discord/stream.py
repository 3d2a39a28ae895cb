"""Streams a Generation into Discord messages.

While waiting behind others the message shows the place in line (refreshed), while the model
loads it says so; while writing, the
text so far with the writing marker, edited at most once per edit interval; past the message
limit the text rolls into new messages, cut where markdown allows. All generated text has its
mentions defused, and every send and edit says allowed_mentions=none. The last render (full
text, final buttons) is retried until Discord takes it, so the paragraph ends complete once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import discord

from bot.discord.errors import NO_MENTIONS, STREAMING, error_id
from bot.discord.pages import PageLayout
from bot.discord.views import Phase, buttons_for
from bot.generation import Progress
from bot.limits import EDIT_INTERVAL_S, INTERACTION_TOKEN_S, QUEUE_POSITION_INTERVAL_S, WRITING_MARKER
from bot.service import Generation
from bot.story_text import DISCORD_STYLE, StoryText

log = logging.getLogger(__name__)
T = TypeVar("T")

TOKEN_MARGIN_S = 60.0  # stop using an interaction token this long before Discord expires it
WAITING = "⏳ Waiting in line: number {position}…"
LOADING = "⏳ Loading the model…"
STARTING = WRITING_MARKER.strip()
STOPPED = DISCORD_STYLE.stopped
NOTHING = "*(nothing was written this time: try again, perhaps with another topic)*"
EMPTY_POLL_S = 0.05  # how often a shutdown looks whether the last streams are done


@dataclass(frozen=True)
class StreamTiming:
    """How often a stream may touch Discord; tests shrink these."""

    edit_interval_s: float = EDIT_INTERVAL_S
    position_interval_s: float = QUEUE_POSITION_INTERVAL_S
    retry_delays_s: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    """Waits between tries of a final send or edit that failed after discord.py's own retries."""
    utcnow: Callable[[], datetime] = field(default=discord.utils.utcnow)
    """The clock interaction tokens expire by."""


class Target(Protocol):
    """Where a stream posts: an interaction's replies or plain channel messages."""

    channel_id: int

    async def post(self, content: str, view: discord.ui.View | None, first: bool) -> int: ...

    async def edit(self, message_id: int, content: str, view: discord.ui.View | None) -> None: ...


class ChannelTarget:
    """New messages in a channel or thread (button clicks, and replies past the token's life)."""

    def __init__(self, channel: discord.abc.Messageable, channel_id: int) -> None:
        self.channel = channel
        self.channel_id = channel_id

    async def post(self, content: str, view: discord.ui.View | None, first: bool) -> int:
        message = await self.channel.send(content, view=view, allowed_mentions=NO_MENTIONS)  # type: ignore[arg-type]
        return message.id

    async def edit(self, message_id: int, content: str, view: discord.ui.View | None) -> None:
        partial = self.channel.get_partial_message(message_id)  # type: ignore[attr-defined]
        await partial.edit(content=content, view=view, allowed_mentions=NO_MENTIONS)


class InteractionTarget:
    """The deferred reply of a command or click, then followups; channel routes once the token
    is too old (15 minutes) or Discord no longer accepts it."""

    def __init__(self, interaction: discord.Interaction, utcnow: Callable[[], datetime]) -> None:
        self.interaction = interaction
        self.channel_id = interaction.channel_id or 0
        self._utcnow = utcnow
        self._original_id: int | None = None
        self._expired = False
        channel: Any = interaction.channel
        self._channel = ChannelTarget(channel, self.channel_id)

    def _token_usable(self) -> bool:
        age = self._utcnow() - self.interaction.created_at
        return not self._expired and age < timedelta(seconds=INTERACTION_TOKEN_S - TOKEN_MARGIN_S)

    async def post(self, content: str, view: discord.ui.View | None, first: bool) -> int:
        if first and self._original_id is None:  # replaces the "thinking..." (or the clicked message)
            self.interaction.extras[STREAMING] = True
            message = await self.interaction.edit_original_response(
                content=content, view=view, allowed_mentions=NO_MENTIONS)
            self._original_id = message.id
            return message.id
        if self._token_usable():
            sent = await self.interaction.followup.send(content, view=view or discord.utils.MISSING,
                                                        wait=True, allowed_mentions=NO_MENTIONS)
            return sent.id
        return await self._channel.post(content, view, first)

    async def edit(self, message_id: int, content: str, view: discord.ui.View | None) -> None:
        if self._token_usable():
            try:
                if message_id == self._original_id:
                    await self.interaction.edit_original_response(
                        content=content, view=view, allowed_mentions=NO_MENTIONS)
                else:
                    await self.interaction.followup.edit_message(
                        message_id, content=content, view=view, allowed_mentions=NO_MENTIONS)
                return
            except discord.HTTPException as error:
                if error.status not in (401, 404):
                    raise
                log.info("interaction token refused (%s); editing through the channel", error.status)
                self._expired = True
        await self._channel.edit(message_id, content, view)


class ActiveGenerations:
    """Generations being streamed now, by message: what Stop and /stats look up."""

    def __init__(self) -> None:
        self._by_message: dict[int, Generation] = {}
        self._running: list[Generation] = []

    def add(self, generation: Generation) -> None:
        self._running.append(generation)

    def bind(self, message_id: int, generation: Generation) -> None:
        self._by_message[message_id] = generation

    def remove(self, generation: Generation) -> None:
        self._running = [g for g in self._running if g is not generation]
        self._by_message = {m: g for m, g in self._by_message.items() if g is not generation}

    def for_message(self, message_id: int) -> Generation | None:
        return self._by_message.get(message_id)

    async def wait_until_empty(self, timeout: float) -> None:
        """Wait (at most `timeout` seconds) until every stream has shown how it ended."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._running and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(EMPTY_POLL_S)

    def progress_of(self, user_id: int) -> list[Progress]:
        """Where each of this user's requests being streamed stands."""
        return [g.progress() for g in self._running if g.place.user_id == user_id]


class StoryStream:
    """Posts one Generation through a Target; `run` returns the ids of the messages it used."""

    def __init__(self, generation: Generation, target: Target, timing: StreamTiming,
                 active: ActiveGenerations) -> None:
        self.generation = generation
        self.target = target
        self.timing = timing
        self.active = active
        self.story = StoryText(generation.params.variants, generation.title, DISCORD_STYLE)
        self.layout = PageLayout()
        self.message_ids: list[int] = []
        self._shown: list[tuple[str, Phase | None]] = []  # (content, buttons) as Discord has them
        self._changed = asyncio.Event()
        self._finished = asyncio.Event()
        self._last_render = 0.0

    async def run(self) -> list[int]:
        self.active.add(self.generation)
        reader = asyncio.create_task(self._read(), name="story-stream-reader")
        try:
            await self._render(final=False)
            while not self._finished.is_set():
                await self._wait_for_news()
                await self._wait_for_edit_slot()
                if not self._finished.is_set():
                    await self._render(final=False)
            await reader
            if self.generation.variant_facts and self.story.ending in ("", STOPPED):
                self.story.show_facts(self.generation.variant_facts)
            await self._render(final=True)
            log.debug("last edit done (messages %s)", self.message_ids)
        except discord.NotFound:  # someone deleted the message: stop writing into the void
            log.info("a streamed message was deleted; stopping its generation and keeping nothing")
            self.generation.discard()
            reader.cancel()
        except BaseException:
            self.generation.cancel()  # nobody can see it any more: free the engine
            reader.cancel()
            raise
        finally:
            self.active.remove(self.generation)
        return self.message_ids

    async def _read(self) -> None:
        try:
            async for event in self.generation.events():
                self.story.apply(event)
                self._changed.set()
        except Exception:  # e.g. storing the turn failed: say so in the message itself
            ident = error_id()
            log.exception("stream %s failed", ident)
            self.story.fail(f"Sorry, something went wrong on my side (error id {ident}).")
        finally:
            self._finished.set()
            self._changed.set()

    async def _wait_for_news(self) -> None:
        # While waiting in line nothing arrives, but the position still moves: look again.
        timeout = None if self.story.started else self.timing.position_interval_s
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            pass
        self._changed.clear()

    async def _wait_for_edit_slot(self) -> None:
        delay = self._last_render + self.timing.edit_interval_s - asyncio.get_running_loop().time()
        if delay > 0:
            try:
                await asyncio.wait_for(self._finished.wait(), delay)
            except TimeoutError:
                pass

    def _pages(self, final: bool) -> list[str]:
        pages = self.layout.pages(self.story.text())
        if final:
            pages = [page for page in pages if page.strip()] or [NOTHING]
            return pages
        tail = pages[-1]
        if tail.strip():
            pages[-1] = tail + WRITING_MARKER
        else:
            pages[-1] = STARTING if self.story.started else self._before_start()
        return pages

    def _before_start(self) -> str:
        """A line in front of others, or the model loading, is said; else it starts at once."""
        progress = self.generation.progress()
        if progress.state == "loading":
            return LOADING
        if progress.state == "waiting" and progress.position is not None:
            return WAITING.format(position=progress.position)
        return STARTING

    async def _render(self, final: bool) -> None:
        """Bring Discord in line with the text: edit changed pages, post new ones."""
        self._last_render = asyncio.get_running_loop().time()
        pages = self._pages(final)
        last_phase: Phase | None = "writing"
        if final:
            last_phase = "done" if self.generation.turn is not None else None
        for index, content in enumerate(pages):
            phase = last_phase if index == len(pages) - 1 else None
            if index < len(self._shown) and self._shown[index] == (content, phase):
                continue
            story = self.generation.story
            view = buttons_for(phase, story.id if story else None) if phase else None
            try:
                await self._retrying(final, functools.partial(self._put, index, content, view))
            except discord.HTTPException as error:
                if final or error.status in (403, 404):
                    raise
                log.info("stream edit failed (%s); the next one carries the text", error.status)
                return
            if index < len(self._shown):
                self._shown[index] = (content, phase)
            else:
                self._shown.append((content, phase))

    async def _put(self, index: int, content: str, view: discord.ui.View | None) -> None:
        if index < len(self.message_ids):
            await self.target.edit(self.message_ids[index], content, view)
            return
        message_id = await self.target.post(content, view, first=index == 0)
        self.message_ids.append(message_id)
        self.active.bind(message_id, self.generation)

    async def _retrying(self, must: bool, call: Callable[[], Awaitable[T]]) -> T:
        """Call; if it must land, try again after 429s and 5xx that discord.py gave up on."""
        delays = self.timing.retry_delays_s if must else ()
        for delay in (*delays, None):
            try:
                return await call()
            except discord.HTTPException as error:
                if delay is None or not (error.status == 429 or error.status >= 500):
                    raise
                log.warning("final stream update failed (%s); retrying in %.1f s", error.status, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")
