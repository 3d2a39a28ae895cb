"""The offline console: the same commands as Discord, typed or piped on stdin.

    /write topic: a lighthouse keeper [model: lstm] [strategy: greedy] [length: 120]
    /continue [direction: the storm arrives]
    /regenerate
    /compare topic: a lighthouse keeper   (every backend, side by side)
    /settings show | /settings set NAME VALUE | /settings reset
    /stats | /help | /quit
"""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
from typing import TextIO

from bot.formatting import settings_table, stats_text
from bot.service import Generation, Place, Service, UserError
from models.params import SettingError

CONSOLE_PLACE = Place(channel_id=0, user_id=0)
_OPTION = re.compile(r"(\w+):\s*")
HELP = __doc__.split("\n\n", 1)[1] if __doc__ else ""
# Discord's /write options that are shorthands for settings.
OPTION_ALIASES = {"length": "max_new_tokens"}


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


class Console:
    """Reads commands line by line and prints replies; generation streams as it arrives."""

    def __init__(self, service: Service, out: TextIO = sys.stdout, place: Place = CONSOLE_PLACE) -> None:
        self.service = service
        self.out = out
        self.place = place

    async def run(self, lines: TextIO = sys.stdin) -> None:
        interactive = lines.isatty()
        if interactive:
            self.say("Offline console. Type /help for commands, /quit to leave.")
        while True:
            if interactive:
                self.out.write("> ")
                self.out.flush()
            line = await asyncio.to_thread(lines.readline)
            if not line:
                return
            if not await self.handle(line.strip()):
                return

    async def handle(self, line: str) -> bool:
        """Run one command; False when the console should exit."""
        if not line:
            return True
        command, _, rest = line.partition(" ")
        try:
            return await self._dispatch(command.lower().lstrip("/"), rest.strip())
        except (UserError, SettingError) as error:
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
            await self.stream(await self.service.continue_story(self.place, options.get("direction")))
        elif command == "compare":
            topic = parse_options(rest, "topic").get("topic", "")
            for generation in await self.service.compare(self.place, topic):
                event = await generation.handle.result()
                body = event.text if event.kind == "done" else f"(failed: {event.text})"
                self.say(f"[{generation.params.model}]\n{body}\n")
        elif command == "regenerate":
            await self.stream(await self.service.regenerate(self.place))
        elif command == "settings":
            await self.settings(rest)
        elif command == "stats":
            self.say(stats_text(self.service.engine.stats()))
        else:
            self.say(f"Unknown command /{command}. Type /help.")
        return True

    def _overrides(self, options: dict[str, str]) -> dict[str, object]:
        from models.params import parse_setting

        overrides: dict[str, object] = {}
        for name, value in options.items():
            key, parsed = parse_setting(OPTION_ALIASES.get(name, name), value)
            overrides[key] = parsed
        return overrides

    async def settings(self, rest: str) -> None:
        words = shlex.split(rest) if rest else ["show"]
        action = words[0].lower()
        if action == "show":
            self.say(settings_table(await self.service.settings_for(self.place)))
        elif action == "set" and len(words) >= 3:
            self.say(await self.service.set_setting(self.place, words[1], " ".join(words[2:])))
        elif action == "reset":
            self.say(await self.service.reset_settings(self.place))
        else:
            self.say("Usage: /settings show | /settings set NAME VALUE | /settings reset")

    async def stream(self, generation: Generation) -> None:
        """Print text as it is written; variants are printed one after another."""
        async for event in generation.events():
            if event.kind == "started" and event.text:
                self.say(f"({event.text})")
            elif event.kind == "text":
                self.out.write(event.text)
                self.out.flush()
            elif event.kind == "variant_done":
                if generation.params.variants > 1:
                    self.say(f"\n--- variant {event.variant + 1} done ---")
            elif event.kind == "error":
                self.say(f"\nSorry: {event.text}")
            elif event.kind == "cancelled":
                self.say("\n(stopped)")
        self.out.write("\n")
        self.out.flush()

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
