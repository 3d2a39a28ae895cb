"""The offline console: the same commands as Discord, typed or piped on stdin.

    /write topic: a lighthouse keeper [model: lstm] [strategy: greedy] [length: 120] [style: noir]
    /continue [direction: the storm arrives] [model: ...] [strategy: ...] [style: ...]
    /regenerate
    /compare topic: a lighthouse keeper   (every backend, side by side)
    /settings show | /settings set NAME VALUE | /settings reset
    /stats | /help | /quit

SIGTERM or Ctrl-C: the paragraph being written finishes (or is cut, with a note), then it exits.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
import threading
from typing import TextIO

from bot.formatting import settings_table, stats_text
from bot.limits import SHUTDOWN_GRACE_S
from bot.messages import UserError
from bot.ops.request_ids import start_request
from bot.paragraph_facts import facts_text
from bot.service import PROMPT_OPTIONS, Generation, Place, Service
from bot.shutdown import run_until_stopped
from bot.storage import StorageUnavailable
from bot.story_text import CONSOLE_STYLE, StoryText
from models.params import SETTINGS, SettingError

CONSOLE_PLACE = Place(channel_id=0, user_id=0)
HELP = __doc__.split("\n\n")[1] if __doc__ else ""
# Discord's /write options that are shorthands for settings.
OPTION_ALIASES = {"length": "max_new_tokens"}
# Only these words start an option; any other "word:" is text ("Chapter 1: ...", a URL).
_OPTION = re.compile(r"\b(" + "|".join(("topic", "direction", *OPTION_ALIASES, *PROMPT_OPTIONS, *SETTINGS)) + r"):\s*",
                     re.IGNORECASE)


def parse_options(text: str, first: str) -> dict[str, str]:
    """`topic: a b c model: lstm` -> {"topic": "a b c", "model": "lstm"}; bare text is `first`."""
    marks = list(_OPTION.finditer(text))
    options: dict[str, str] = {}
    head = text[: marks[0].start()] if marks else text
    if head.strip():
        options[first] = head.strip()
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        options[mark.group(1).lower()] = text[mark.end():end].strip()
    return options


class InputLines:
    """Lines of a blocking stream, read ahead by a daemon thread: a shutdown never waits for
    input (an executor thread stuck in readline would hold up the interpreter's exit)."""

    def __init__(self, stream: TextIO) -> None:
        self._loop = asyncio.get_running_loop()
        self._lines: asyncio.Queue[str] = asyncio.Queue()
        threading.Thread(target=self._pump, args=(stream,), name="console-input", daemon=True).start()

    def _pump(self, stream: TextIO) -> None:
        while True:
            line = stream.readline()
            try:
                self._loop.call_soon_threadsafe(self._lines.put_nowait, line)
            except RuntimeError:  # the event loop is gone: nobody reads any more
                return
            if not line:
                return

    async def readline(self) -> str:
        """The next line with its newline, or "" at the end of input (or after `close`)."""
        return await self._lines.get()

    def close(self) -> None:
        """Make the next `readline` return "" at once."""
        self._lines.put_nowait("")


class Console:
    """Reads commands line by line and prints replies; generation streams as it arrives."""

    def __init__(self, service: Service, out: TextIO = sys.stdout, place: Place = CONSOLE_PLACE,
                 grace_s: float = SHUTDOWN_GRACE_S) -> None:
        self.service = service
        self.out = out
        self.place = place
        self.grace_s = grace_s  # on shutdown, how long the paragraph being written may take
        self.closing = False
        self._input: InputLines | None = None

    async def run(self, lines: TextIO = sys.stdin, stop: asyncio.Event | None = None) -> None:
        """Take commands until /quit or the end of input; once `stop` is set, shut down gently."""
        await run_until_stopped(self._serve(lines), stop, self.shut_down)

    async def _serve(self, lines: TextIO) -> None:
        self._input = InputLines(lines)
        interactive = lines.isatty()
        if interactive:
            self.say("Offline console. Type /help for commands, /quit to leave.")
        while not self.closing:
            if interactive:
                self.out.write("> ")
                self.out.flush()
            line = await self._input.readline()
            if not line or self.closing or not await self.handle(line.strip()):
                break
        if self.closing:
            self.say("(the bot is shutting down: goodbye)")

    async def shut_down(self) -> None:
        """Take no more commands; the paragraph being written finishes or is cut with a note."""
        self.closing = True
        if self._input is not None:
            self._input.close()
        await self.service.shut_down(self.grace_s)

    async def handle(self, line: str) -> bool:
        """Run one command; False when the console should exit."""
        if not line:
            return True
        command, _, rest = line.partition(" ")
        start_request()  # this line's log lines, through the service and the engine, carry its id
        try:
            return await self._dispatch(command.lower().lstrip("/"), rest.strip())
        except (UserError, SettingError, StorageUnavailable) as error:
            self.say(f"Sorry: {error}")
        return True

    async def _dispatch(self, command: str, rest: str) -> bool:
        if command in ("quit", "exit"):
            return False
        if command == "help":
            self.say(HELP)
        elif command == "write":
            options = parse_options(rest, "topic")
            topic = options.pop("topic", "")
            overrides = self._overrides(options)
            await self.stream(await self.service.write(self.place, topic, overrides))
        elif command == "continue":
            options = parse_options(rest, "direction")
            direction = options.pop("direction", None)
            await self.stream(await self.service.continue_story(self.place, direction, self._overrides(options)))
        elif command == "compare":
            topic = parse_options(rest, "topic").get("topic", "")
            for generation in await self.service.compare(self.place, topic):
                event = await generation.result()
                body = event.text if event.kind == "done" else f"(failed: {event.text})"
                self.say(f"[{generation.params.model}]\n{body}\n")
        elif command == "regenerate":
            await self.stream(await self.service.regenerate(self.place))
        elif command == "settings":
            await self.settings(rest)
        elif command == "stats":
            self.say(stats_text(self.service.stats(), stored=await self.service.stored()))
        else:
            self.say(f"Unknown command /{command}. Type /help.")
        return True

    def _overrides(self, options: dict[str, str]) -> dict[str, object]:
        from models.params import parse_setting

        overrides: dict[str, object] = {}
        for name, value in options.items():
            if name in PROMPT_OPTIONS:
                overrides[name] = value
                continue
            key, parsed = parse_setting(OPTION_ALIASES.get(name, name), value)
            overrides[key] = parsed
        return overrides

    async def settings(self, rest: str) -> None:
        try:
            words = shlex.split(rest) if rest else ["show"]
        except ValueError as error:  # an unclosed quote or a trailing backslash
            raise UserError(f"I can't read that line ({str(error).lower()}): "
                            'put a value with spaces in "double quotes"') from None
        action = words[0].lower()
        if action == "show":
            here = await self.service.effective_settings(self.place)
            self.say(settings_table(here, self.service.models, self.service.unsupported(here.params)))
        elif action == "set" and len(words) >= 3:
            self.say(await self.service.set_setting(self.place, words[1], " ".join(words[2:])))
        elif action == "reset":
            self.say(await self.service.reset_settings(self.place))
        else:
            self.say("Usage: /settings show | /settings set NAME VALUE | /settings reset")

    async def stream(self, generation: Generation) -> None:
        """Print text as it is written. Variants are written at once but printed one after
        another, each whole (StoryText shows a variant once the ones before it are done)."""
        story = StoryText(generation.params.variants, style=CONSOLE_STYLE)
        shown = ""
        async for event in generation.events():
            story.apply(event)
            text = story.text()
            # The text only grows; should a stop ever cut what was shown, start a fresh line.
            piece = text[len(shown):] if text.startswith(shown) else "\n" + text
            if piece:
                self.out.write(piece)
                self.out.flush()
            shown = text
        self.out.write("\n")
        many = len(generation.variant_facts) > 1
        for number, facts in enumerate(generation.variant_facts, start=1):
            self.say(f"(variant {number}: {facts_text(facts)})" if many else f"({facts_text(facts)})")
        self.out.flush()

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
