"""What flows through the engine: requests, their handles and events, and running rows."""

from __future__ import annotations

import asyncio
import bisect
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from bot.engine.banned_phrases import BannedPhrases
from bot.engine.detokenizer import IncrementalDetokenizer
from bot.engine.paragraph_end import paragraph_end
from bot.engine.retell import MAX_HELD_TOKENS, RetellGuard, first_sentence_end
from models.base import Prompt, StepModel
from models.name_guard import name_guard
from models.params import SETTINGS, GenerationParams
from models.sampling import RowSampling

ProgressState = Literal["waiting", "loading", "starting", "writing"]
EventKind = Literal["started", "text", "variant_done", "done", "error", "cancelled"]
TERMINAL = ("done", "error", "cancelled")
# The last tokens before the length limit: what they write shows a sentence at a time, so that a
# paragraph the limit cuts ends with its last whole sentence rather than in the middle of one.
LENGTH_TAIL_TOKENS = 40
_SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*(?=\s)")
SEED_LIMIT = int(SETTINGS["seed"].maximum or 2**31 - 1) + 1  # a drawn seed is one a member can set


class Failure(Enum):
    """Why a request ended with an "error" event; the service words it for users (bot/messages.py)."""

    SHUTTING_DOWN = "shutting_down"  # the bot stops
    STEP_FAILED = "step_failed"  # the model failed in a step of the batch (text: why, one line)
    NO_MODEL = "no_model"  # no model could be loaded (text: why)
    REQUEST_FAILED = "request_failed"  # this request alone failed (text: why, in the backend's words)
    # A remote model (bot/engine/remote): text is the model's name.
    REMOTE_DOWN = "remote_down"  # no replica answers (refused, timed out, circuit open)
    REMOTE_BUSY = "remote_busy"  # the server kept answering 429 (too many requests)
    REMOTE_KEY = "remote_key"  # the server refused the API key (401/403): the owner must fix it
    REMOTE_CUT = "remote_cut"  # the stream broke after text arrived: the text is kept, not stored


@dataclass(frozen=True)
class Fallback:
    """The default model stands in for one that could not be loaded."""

    wanted: str
    reason: str  # why `wanted` could not be loaded, in one line
    used: str


@dataclass(frozen=True)
class Event:
    """One thing that happened to a request. `text` is a new piece for "text" events, the
    whole final text for "variant_done" and "done", and for "error" the detail of `failure`.
    A "started" event carries `fallback` when the default model stands in for another, and
    `unsupported`: the settings in effect that the model cannot honour (a remote dialect's)."""

    kind: EventKind
    text: str = ""
    variant: int = 0
    reason: str | None = None
    failure: Failure | None = None
    fallback: Fallback | None = None
    unsupported: tuple[str, ...] = ()


@dataclass(frozen=True)
class Progress:
    """Where a request stands. "waiting": behind others for a place in the batch (`position` is
    its place in that line, 1 = next); "loading": its model is being loaded; "starting": it will
    join the batch at the next step; "writing": it runs (`tokens` written so far, all variants)."""

    state: ProgressState
    position: int | None = None
    tokens: int = 0


@dataclass
class GenerationRequest:
    """A prompt with its settings, and whose turn it is (fairness) and whose it is (limits)."""

    prompt: Prompt
    params: GenerationParams
    fairness_key: str = "default"
    user_id: int | None = None
    affinity_key: str | None = None
    """Requests with the same key go to the same replica of a remote model while it is healthy
    (a story's turns: the server's prefix cache keeps its context); None uses fairness_key."""
    request_id: str = ""
    """Names the request in every log line about it (contextvars do not reach the worker thread)."""


class RequestHandle:
    """The asyncio side of one request: its events in order. Cancelling and the place in line
    are the engine's to answer (`Engine.cancel`, `Engine.position`): a handle knows no engine."""

    def __init__(self, request_id: int, request: GenerationRequest, loop: asyncio.AbstractEventLoop) -> None:
        self.id = request_id
        self.request = request
        self.fairness_key = request.fairness_key
        self.user_id = request.user_id
        self.submitted_at = time.monotonic()
        self.started_at: float | None = None
        self.cancelled = False
        self.model_used: str | None = None
        self.variants_left = request.params.variants
        self.tokens_written = 0  # all variants; the worker counts, the asyncio side reads
        self.seed_used: int | None = None  # the seed drawn with (set or chosen); None for beam search
        self.cuts: dict[int, int] = {}  # variant -> tokens written when the length limit cut it
        self.texts: dict[int, str] = {}
        self.fallback: Fallback | None = None  # set when a remote model's request runs on the default
        self._loop = loop
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self.final: Event | None = None

    def deliver(self, event: Event) -> None:
        """Called from the worker thread: hand the event to the event loop."""
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    def deliver_here(self, event: Event) -> None:
        """Called on the event loop itself (the remote path): no thread hop, no wake-up write."""
        self._events.put_nowait(event)

    async def events(self) -> AsyncIterator[Event]:
        """Events until the terminal one (done, error or cancelled), which is yielded last."""
        while True:
            event = await self._events.get()
            yield event
            if event.kind in TERMINAL:
                self.final = event
                return

    async def result(self) -> Event:
        """Wait for the terminal event, ignoring the stream."""
        async for event in self.events():
            if event.kind in TERMINAL:
                return event
        raise AssertionError("unreachable")


def seed_of(handle: RequestHandle, params: GenerationParams) -> int:
    """The request's seed: the one set, else one drawn now and kept on the handle, so that the
    paragraph can be written again with `/settings set seed` (variant v draws with seed + v)."""
    if handle.seed_used is None:
        handle.seed_used = params.seed if params.seed is not None else secrets.randbelow(SEED_LIMIT)
    return handle.seed_used


@dataclass
class StreamedText:
    """One variant's text as it streams: what was shown, where a paragraph may end, and how it
    finished. The in-process rows (Row) and the remote ones (bot/engine/remote) share it, so a
    stop string and the paragraph's end behave the same whoever writes the tokens."""

    handle: RequestHandle
    variant: int
    text: str = field(default="", kw_only=True)
    sent: int = field(default=0, kw_only=True)  # characters of `text` already streamed
    # characters of `text` written before min_new_tokens: no paragraph ends inside
    floor: int = field(default=0, kw_only=True)
    first_token_at: float | None = field(default=None, kw_only=True)
    finished_reason: str | None = field(default=None, kw_only=True)
    error: str | None = field(default=None, kw_only=True)  # why it failed (one line), with `failure` saying how
    failure: Failure | None = field(default=None, kw_only=True)
    done: bool = field(default=False, kw_only=True)
    pending_text: str = field(default="", repr=False, kw_only=True)
    banned: BannedPhrases | None = field(default=None, repr=False, kw_only=True)
    # Where a banned phrase begins in `text`, once one was written; a local row rewinds to it
    # (bot/engine/rewind.py), any other ends its paragraph there.
    banned_at: int | None = field(default=None, kw_only=True)
    can_rewind: bool = field(default=False, repr=False, kw_only=True)
    near_length: bool = field(default=False, repr=False, kw_only=True)  # within LENGTH_TAIL_TOKENS of the limit

    def settle(self, params: GenerationParams, count: int, before: str, whole: Callable[[], str]) -> None:
        """After the text grew to `count` tokens (`before` was the text until this token): note
        the floor, finish at the length, a stop string or the paragraph's end, else make the
        text that no later stop can cut pending. `whole` gives the final text at the length."""
        if count < params.min_new_tokens:
            self.floor = len(self.text)
        if count >= params.max_new_tokens:
            self.finish(whole(), "length")
            return
        self.near_length = count >= params.max_new_tokens - LENGTH_TAIL_TOKENS
        if self.banned:
            self.banned_at = self.banned.find(self.text, self.sent)
            if self.banned_at is not None:
                if not self.can_rewind:
                    self.finish(self.text[:self.banned_at], "stop")
                return
        if not params.ignore_eos and count >= params.min_new_tokens and self._stop_found(params, before):
            return
        self.release(params)

    def release(self, params: GenerationParams) -> None:
        """Make the text that nothing later can cut pending (to be streamed)."""
        if self.holding():
            return
        # Hold back what a later stop could still cut: trailing spaces and the beginning of a
        # stop string (a half character never reaches `text`: the detokenizer holds it).
        visible = self.text.rstrip("\ufffd").rstrip()
        if params.stop:
            visible = visible[: max(self.sent, len(visible) - len(params.stop) + 1)]
        if self.banned:  # nor what may still grow into a banned phrase
            visible = visible[: max(self.sent, self.held_back_from(self.banned.held_from(visible, self.sent)))]
            visible = visible.rstrip() if len(visible.rstrip()) >= self.sent else visible
        if self.near_length:  # the length limit may cut the sentence being written: hold it
            visible = self._complete_sentences(visible)
        if len(visible) > self.sent:
            self.pending_text += visible[self.sent:]
            self.sent = len(visible)

    def _complete_sentences(self, text: str) -> str:
        """`text` without its last, unfinished sentence (a paragraph the length limit cuts ends
        where a sentence does), unless part of that sentence was shown or it has no other."""
        ends = [m.end() for m in _SENTENCE_END.finditer(text.rstrip() + " ")]
        end = max((e for e in ends if e <= len(text.rstrip())), default=0)
        return text[:end].rstrip() if end and end >= self.sent else text

    def _stop_found(self, params: GenerationParams, before: str) -> bool:
        """Finish at the first stop string or paragraph break. Only text not yet streamed may
        be cut (what members saw stays), and only the end of the text is searched for a stop
        string: `before`, the text until this token, was searched already."""
        body = self.text
        cut = -1
        if params.stop:
            cut = body.find(params.stop, max(self.sent, len(before) - len(params.stop) + 1, 0))
        if params.stop_at_paragraph:
            para = paragraph_end(body, self.floor, max(self.sent, len(before.rstrip())),
                                 self.handle.request.prompt.topic)
            if para is not None:
                cut = para if cut < 0 else min(cut, para)
        if cut < 0:
            return False
        self.finish(body[:cut], "stop")
        return True

    def held_back_from(self, index: int) -> int:
        """Where text held back from `index` on must begin (a row aligns it to a token)."""
        return index

    def holding(self) -> bool:
        """Whether all new text waits (a row's first sentence, until it is judged)."""
        return False

    def finish(self, text: str, reason: str, error: str | None = None, failure: Failure | None = None) -> None:
        if self.banned and (cut := self.banned.find(text.strip(), self.sent, ended=True)) is not None:
            text = text.strip()[:cut]  # the last resort: a phrase that ends the text is never shown
        if reason == "length":
            text = self._complete_sentences(text.strip())
        self.text = text.strip()
        self.finished_reason = reason
        self.error = error
        self.failure = failure if error is not None else None
        if len(self.text) > self.sent and self.text.startswith(self.text[: self.sent]):
            self.pending_text += self.text[self.sent:]
            self.sent = len(self.text)

    def take_pending(self) -> str:
        piece, self.pending_text = self.pending_text, ""
        return piece

    def written(self) -> int:
        """Tokens written so far."""
        raise NotImplementedError


@dataclass
class Row(StreamedText):
    """One variant of a running in-process request: its prompt, sampling state and detokenizer."""

    prompt_ids: list[int]
    sampling: RowSampling
    detokenizer: IncrementalDetokenizer
    ends: list[int] = field(default_factory=list, repr=False)  # len(text) after each generated token
    rewinds: int = 0  # how often a banned phrase sent it back
    rewind_to: int | None = None  # the token to write again, for the engine to rewind the model to
    retell: RetellGuard | None = None  # judges a continuation's first sentence (bot/engine/retell.py)
    forced: list[int] = field(default_factory=list)  # tokens to write next whatever is sampled

    @classmethod
    def start(cls, handle: RequestHandle, variant: int, prompt_ids: list[int], params: GenerationParams,
              model: StepModel, seed: int | None) -> Row:
        """A row about to be prefilled, with its own sampling state and detokenizer."""
        # DRY looks over the story so far; a new story's first paragraph has none (context None).
        prompt = handle.request.prompt
        context = prompt_ids if prompt.history else None
        sampling = RowSampling.create(params, model.eos_token_ids, seed, model.ngram_free_tokens,
                                      context=context, sequence_breakers=model.sequence_breaker_tokens,
                                      names=name_guard(getattr(model, "name_token_ids", None), prompt.cast))
        detokenizer = IncrementalDetokenizer(model.decode_text, getattr(model, "decode_context_tokens", None))
        return cls(handle, variant, prompt_ids, sampling, detokenizer,
                   banned=BannedPhrases.for_row(params.banned_phrases),
                   can_rewind=callable(getattr(model, "rewind", None)))

    @property
    def next_input(self) -> int:
        """The token the next decode step feeds: the last one written (after a rewind to the
        very start, the prompt's last)."""
        return self.sampling.generated[-1] if self.sampling.generated else self.prompt_ids[-1]

    def holding(self) -> bool:
        return self.retell is not None and not self.retell.settled

    def held_back_from(self, index: int) -> int:
        # From the start of the token that holds `index`: a rewind drops whole tokens, and what
        # was shown must stay.
        token = bisect.bisect_right(self.ends, index)
        return self.ends[token - 1] if token else 0

    def step(self, token: int, model: StepModel) -> None:
        """Take one chosen token (or the next of `forced`, a first sentence written again);
        update the text and decide whether the row is finished."""
        token = self.forced.pop(0) if self.forced else token
        params = self.sampling.params
        count = len(self.sampling.generated)
        if token in model.eos_token_ids and not params.ignore_eos and count >= params.min_new_tokens:
            self.finish(self.detokenizer.final_text(), "stop")
            return
        self.sampling.push(token)
        before = self.text  # a stop can only end in what this token added
        self.detokenizer.push(token)
        self.text = self.detokenizer.text.lstrip()
        self.ends.append(len(self.text))
        self.settle(params, count + 1, before, self.detokenizer.final_text)
        if self.banned_at is not None and not self.finished_reason:
            self.rewind_to = bisect.bisect_right(self.ends, self.banned_at)
        elif self.holding() and not self.finished_reason and not self.forced:
            self._judge_first_sentence(params)

    def _judge_first_sentence(self, params: GenerationParams) -> None:
        """Once the first sentence is complete: keep it (and show it), write it again, or write
        the least retelling try again (bot/engine/retell.py)."""
        assert self.retell is not None
        end = first_sentence_end(self.text)
        if end is None and len(self.sampling.generated) >= MAX_HELD_TOKENS:
            end = len(self.text)  # no sentence end in sight: judge what there is, wait no longer
        if end is None:
            return
        tokens = self.sampling.generated[: bisect.bisect_left(self.ends, end) + 1]
        keep = self.retell.judge(self.text[:end], tokens)
        if keep is None or keep != tokens:
            self.banned_at, self.rewind_to = 0, 0  # back to the first token, which is forbidden there
            self.forced = list(keep or [])
        else:
            self.release(params)

    def written(self) -> int:
        return len(self.sampling.generated)


@dataclass(frozen=True)
class PreparedRequest:
    """A request whose prompt is encoded and cut to the window: ready for its rows' prefill."""

    handle: RequestHandle
    prompt_ids: list[int]
    params: GenerationParams
