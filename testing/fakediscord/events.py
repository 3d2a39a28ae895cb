"""Which gateway events a state change causes, filtered by the session's intents."""

from __future__ import annotations

import re

from .builders import channel_json, message_json
from .gateway import Gateway
from .models import FakeChannel, FakeMessage
from .world import World

# Intent bits (Discord's numbering).
GUILDS = 1 << 0
GUILD_MESSAGES = 1 << 9
MESSAGE_CONTENT = 1 << 15


class EventPublisher:
    """Turns message and thread changes into the dispatches real Discord would send.

    Ephemeral messages produce no events; without the message-content intent, messages from
    others that do not mention the bot arrive with empty content, embeds, attachments and
    components, as on Discord.
    """

    def __init__(self, world: World, gateway: Gateway) -> None:
        self.world = world
        self.gateway = gateway

    async def message_created(self, message: FakeMessage) -> None:
        """MESSAGE_CREATE for a new visible message."""
        if self._wants_message(message):
            await self.gateway.dispatch("MESSAGE_CREATE", self._message_payload(message))

    async def message_updated(self, message: FakeMessage) -> None:
        """MESSAGE_UPDATE after an edit."""
        if self._wants_message(message):
            await self.gateway.dispatch("MESSAGE_UPDATE", self._message_payload(message))

    async def message_deleted(self, message: FakeMessage) -> None:
        """MESSAGE_DELETE after a delete."""
        if self._wants_message(message):
            data = {"id": str(message.id), "channel_id": str(message.channel_id)}
            if message.guild_id is not None:
                data["guild_id"] = str(message.guild_id)
            await self.gateway.dispatch("MESSAGE_DELETE", data)

    async def thread_created(self, thread: FakeChannel) -> None:
        """THREAD_CREATE (newly created), so the client caches the thread."""
        if self._wants(GUILDS):
            await self.gateway.dispatch("THREAD_CREATE", {**channel_json(thread), "newly_created": True})

    async def thread_updated(self, thread: FakeChannel) -> None:
        """THREAD_UPDATE after a rename, archive or lock."""
        if self._wants(GUILDS):
            await self.gateway.dispatch("THREAD_UPDATE", channel_json(thread))

    def _wants(self, intent: int) -> bool:
        return self.gateway.session is not None and bool(self.gateway.intents & intent)

    def _wants_message(self, message: FakeMessage) -> bool:
        return not message.ephemeral and self._wants(GUILD_MESSAGES)

    def _message_payload(self, message: FakeMessage) -> dict[str, object]:
        data = message_json(self.world, message)
        bot_id = self.world.bot.id
        mentions_bot = re.search(rf"<@!?{bot_id}>", message.content) is not None
        if not self._wants(MESSAGE_CONTENT) and message.author_id != bot_id and not mentions_bot:
            data.update(content="", embeds=[], attachments=[], components=[])
        return data
