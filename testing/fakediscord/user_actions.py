"""Fake users acting: slash commands, message context menus, button clicks and plain messages,
sent over the gateway."""

from __future__ import annotations

import secrets
from typing import Any

from .builders import channel_json, member_json, message_json
from .events import EventPublisher
from .gateway import Gateway
from .interactions import (
    APPLICATION_COMMAND,
    APPLICATION_COMMAND_AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    FakeInteraction,
)
from .models import FakeMessage
from .options import Option, build_options
from .world import World

# What Discord tells bots they may upload per message (10 MiB without boosts).
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
BUTTON = 2
MESSAGE_MENU = 3  # application command type of a message context menu


class UserActions:
    """Builds the INTERACTION_CREATE / MESSAGE_CREATE payloads Discord sends when users act."""

    def __init__(self, world: World, gateway: Gateway, events: EventPublisher) -> None:
        self.world = world
        self.gateway = gateway
        self.events = events

    async def slash(
        self,
        guild_id: int,
        channel_id: int,
        user_id: int,
        name: str,
        options: dict[str, Any] | list[Option] | None = None,
        subcommand: str | None = None,
        group: str | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A user runs ``/name [group] [subcommand] options`` (the command must be synced)."""
        command = self.world.find_command(name, guild_id)
        if command is None:
            known = sorted(c["name"] for scope in self.world.commands.values() for c in scope)
            raise LookupError(f"/{name} is not registered for guild {guild_id} or globally (synced: {known})")
        built, resolved = build_options(self.world, guild_id, command, options or {}, subcommand, group)
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "options": built}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]  # the tree looks guild commands up by it
        if resolved:
            data["resolved"] = resolved
        return await self._interact(APPLICATION_COMMAND, guild_id, channel_id, user_id, data, locale)

    async def autocomplete(
        self,
        guild_id: int,
        channel_id: int,
        user_id: int,
        name: str,
        typed: dict[str, str],
        focused: str,
        subcommand: str | None = None,
    ) -> FakeInteraction:
        """A user types into ``focused`` (string options only, as typed so far, unchecked)."""
        command = self.world.find_command(name, guild_id)
        if command is None:
            raise LookupError(f"/{name} is not registered for guild {guild_id} or globally")
        options: list[dict[str, Any]] = [
            {"name": key, "type": 3, "value": value, **({"focused": True} if key == focused else {})}
            for key, value in typed.items()
        ]
        if subcommand is not None:
            options = [{"name": subcommand, "type": 1, "options": options}]
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "options": options}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return await self._interact(APPLICATION_COMMAND_AUTOCOMPLETE, guild_id, channel_id, user_id, data, "en-US")

    async def click(
        self,
        guild_id: int,
        channel_id: int,
        user_id: int,
        message_id: int,
        custom_id: str,
        component_type: int = BUTTON,
        values: list[str] | None = None,
    ) -> FakeInteraction:
        """A user clicks a button (or picks ``values`` in a select) on a message."""
        message = self.world.messages.get(message_id)
        if message is None or message.deleted or message.channel_id != channel_id:
            raise LookupError(f"no live message {message_id} in channel {channel_id}")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = values
        return await self._interact(MESSAGE_COMPONENT, guild_id, channel_id, user_id, data, "en-US", message)

    async def message_command(
        self, guild_id: int, channel_id: int, user_id: int, name: str, message_id: int
    ) -> FakeInteraction:
        """A user picks ``name`` from a message's context menu (Apps > name) on ``message_id``."""
        command = self.world.find_command(name, guild_id, MESSAGE_MENU)
        if command is None:
            raise LookupError(f"no message command {name!r} is registered for guild {guild_id} or globally")
        message = self.world.messages.get(message_id)
        if message is None or message.deleted or message.channel_id != channel_id:
            raise LookupError(f"no live message {message_id} in channel {channel_id}")
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": MESSAGE_MENU,
            "target_id": str(message_id),
            "resolved": {"messages": {str(message_id): message_json(self.world, message)}},
        }
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return await self._interact(APPLICATION_COMMAND, guild_id, channel_id, user_id, data, "en-US")

    async def user_message(self, channel_id: int, user_id: int, content: str) -> FakeMessage:
        """A member posts a plain message (MESSAGE_CREATE)."""
        channel = self.world.channel(channel_id)
        if user_id not in self.world.guilds[channel.guild_id].members:
            raise LookupError(f"user {user_id} is not a member of guild {channel.guild_id}")
        message = self.world.create_message(channel_id, user_id, {"content": content})
        await self.events.message_created(message)
        return message

    async def _interact(
        self,
        kind: int,
        guild_id: int,
        channel_id: int,
        user_id: int,
        data: dict[str, Any],
        locale: str,
        message: FakeMessage | None = None,
    ) -> FakeInteraction:
        """Register the interaction (so a fast callback finds it), then dispatch it."""
        channel = self.world.channel(channel_id)
        guild = self.world.guilds[guild_id]
        if channel.guild_id != guild_id or user_id not in guild.members:
            raise LookupError(f"channel {channel_id} / user {user_id} are not both in guild {guild_id}")
        iid = self.world.ids.next()
        bot_permissions = str(self.world.permissions_of(guild_id, self.world.bot.id))
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.world.application_id),
            "type": kind,
            "token": f"ix-{iid}-{secrets.token_urlsafe(16)}",
            "version": 1,
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
            "data": data,
            "guild_id": str(guild_id),
            "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
            "guild_locale": "en-US",
            "channel": {**channel_json(channel), "permissions": bot_permissions},
            "channel_id": str(channel_id),
            "member": member_json(self.world, guild.members[user_id], with_permissions=True),
            "app_permissions": bot_permissions,
            "locale": locale,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild_id)},
            "context": 0,
        }
        if message is not None:
            payload["message"] = message_json(self.world, message)
        ix = FakeInteraction(
            iid, payload["token"], kind, guild_id, channel_id, user_id, payload, self.world,
            source_message_id=message.id if message is not None else None,
        )  # fmt: skip
        self.world.interactions[iid] = ix
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return ix
