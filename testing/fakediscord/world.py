"""The fake Discord's state and the rules for changing it; knows nothing about HTTP or sockets."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import permissions
from .ids import SnowflakeFactory
from .models import (
    GUILD_TEXT,
    LOADING,
    PUBLIC_THREAD,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
    iso_now,
)
from .recorder import RecordedFile
from .waiting import Notifier

if TYPE_CHECKING:
    from .interactions import FakeInteraction

# discord.py names upload parts "files[0]", "files[1]", ...; the index is the attachment's id.
_FILE_FIELD = re.compile(r"files\[(\d+)\]")
# Message fields a create or edit payload may set directly.
_PLAIN_FIELDS = ("embeds", "components")


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard Discord sends a guild's events to."""
    return (guild_id >> 22) % shard_count


class World:
    """Users, guilds, channels, threads, messages, commands and interactions, by id."""

    def __init__(self, notifier: Notifier, token: str, bot_name: str = "StoryBot") -> None:
        self.notifier = notifier
        self.token = token
        self.base_url = ""  # http://127.0.0.1:PORT, set once the server listens
        self.ids = SnowflakeFactory()
        self.bot = FakeUser(self.ids.next(), bot_name, bot=True)
        # New applications share the bot user's id, as on real Discord.
        self.application_id = self.bot.id
        self.users: dict[int, FakeUser] = {self.bot.id: self.bot}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.messages: dict[int, FakeMessage] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.shard_count = 1  # what GET /gateway/bot recommends (AutoShardedClient asks)
        # Registered application commands: None holds the global ones.
        self.commands: dict[int | None, list[dict[str, Any]]] = {}

    # ----- population -----

    def add_user(self, username: str, bot: bool = False) -> FakeUser:
        """Create a user that can then join guilds."""
        user = FakeUser(self.ids.next(), username, bot=bot)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str, owner_id: int | None = None, shard: tuple[int, int] | None = None) -> FakeGuild:
        """Create a guild with its @everyone role; the bot is a member of every guild. With
        `shard` (id, count), its id is one Discord routes to that shard: (id >> 22) % count."""
        gid = self.ids.next()
        while shard is not None and shard_of(gid, shard[1]) != shard[0]:
            time.sleep(0.001)  # the shard follows the id's millisecond: draw again in the next one
            gid = self.ids.next()
        guild = FakeGuild(gid, name, owner_id or self.bot.id)
        guild.roles[gid] = FakeRole(gid, gid, "@everyone", permissions.DEFAULT_EVERYONE)
        self.guilds[gid] = guild
        self.add_member(gid, self.bot.id)
        return guild

    def add_role(self, guild_id: int, name: str, perms: int) -> FakeRole:
        """Create a role with this permission bitfield."""
        guild = self.guilds[guild_id]
        role = FakeRole(self.ids.next(), guild_id, name, perms, position=len(guild.roles))
        guild.roles[role.id] = role
        return role

    def add_text_channel(self, guild_id: int, name: str) -> FakeChannel:
        """Create a text channel at the end of the guild's list."""
        guild = self.guilds[guild_id]
        channel = FakeChannel(self.ids.next(), guild_id, name, GUILD_TEXT, position=len(guild.channels))
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        return channel

    def add_member(
        self, guild_id: int, user_id: int, role_ids: Iterable[int] = (), flags: int = 0
    ) -> FakeMember:
        """Make a user a member of a guild with these roles (besides @everyone)."""
        member = FakeMember(user_id, guild_id, list(role_ids), flags)
        self.guilds[guild_id].members[user_id] = member
        return member

    # ----- lookups -----

    def channel(self, channel_id: int) -> FakeChannel:
        """A channel or thread by id (KeyError if unknown)."""
        return self.channels[channel_id]

    def permissions_of(self, guild_id: int, user_id: int) -> int:
        """The member's guild-level permissions (owner and administrator get all)."""
        guild = self.guilds[guild_id]
        if user_id == guild.owner_id:
            return permissions.ALL
        member = guild.members[user_id]
        role_ids = [guild_id, *member.role_ids]
        return permissions.combine(guild.roles[r].permissions for r in role_ids if r in guild.roles)

    def messages_in(self, channel_id: int, include_deleted: bool = False) -> list[FakeMessage]:
        """The channel's messages in order, as they read now."""
        found = [m for m in self.messages.values() if m.channel_id == channel_id]
        return sorted((m for m in found if include_deleted or not m.deleted), key=lambda m: m.id)

    def threads_of(self, channel_id: int) -> list[FakeChannel]:
        """Threads whose parent is this channel, oldest first."""
        return sorted((c for c in self.channels.values() if c.parent_id == channel_id), key=lambda c: c.id)

    # ----- messages -----

    def create_message(
        self,
        channel_id: int,
        author_id: int,
        payload: dict[str, Any],
        files: Sequence[RecordedFile] = (),
        **extra: Any,
    ) -> FakeMessage:
        """Store a new message from a create payload (content, embeds, components, flags, files)."""
        channel = self.channels[channel_id]
        message = FakeMessage(self.ids.next(), channel_id, channel.guild_id, author_id, **extra)
        message.content = payload.get("content") or ""
        message.flags |= int(payload.get("flags") or 0)
        for key in _PLAIN_FIELDS:
            setattr(message, key, list(payload.get(key) or []))
        message.attachments = self._attachments(message, payload, files)
        reference = payload.get("message_reference") or {}
        if reference.get("message_id"):
            message.reference_id = int(reference["message_id"])
        self.messages[message.id] = message
        return message

    def edit_message(
        self, message: FakeMessage, payload: dict[str, Any], files: Sequence[RecordedFile] = ()
    ) -> None:
        """Apply an edit payload: only the fields present change; edits end a loading state."""
        if "content" in payload:
            message.history.append(message.content)
            message.content = payload["content"] or ""
        for key in _PLAIN_FIELDS:
            if key in payload:
                setattr(message, key, list(payload[key] or []))
        if "attachments" in payload or files:
            message.attachments = self._attachments(message, payload, files)
        message.flags &= ~LOADING
        message.edited_at = iso_now()

    def _attachments(
        self, message: FakeMessage, payload: dict[str, Any], files: Sequence[RecordedFile]
    ) -> list[FakeAttachment]:
        """Kept attachments (by id) plus new uploads, in the order the payload lists them."""
        uploads = {}
        for file in files:
            match = _FILE_FIELD.fullmatch(file.field)
            index = int(match.group(1)) if match else len(uploads)
            uploads[index] = file
        existing = {a.id: a for a in message.attachments}
        listed = payload.get("attachments")
        if listed is None:  # no list: keep what was there and append every upload
            listed = [{"id": a.id} for a in message.attachments] + [{"id": i} for i in uploads]
        result = []
        for entry in listed:
            key = int(entry["id"])
            if key in existing:
                result.append(existing[key])
            elif key in uploads:
                up = uploads[key]
                name = entry.get("filename") or up.filename
                desc = entry.get("description")
                result.append(FakeAttachment(self.ids.next(), name, up.data, up.content_type, desc))
        return result

    # ----- threads -----

    def create_thread(
        self,
        parent_id: int,
        name: str,
        owner_id: int,
        thread_type: int = PUBLIC_THREAD,
        auto_archive_duration: int = 1440,
        message: FakeMessage | None = None,
    ) -> FakeChannel:
        """Open a thread under a text channel; a thread from a message takes the message's id."""
        parent = self.channels[parent_id]
        thread_id = message.id if message is not None else self.ids.next()
        thread = FakeChannel(
            thread_id,
            parent.guild_id,
            name,
            thread_type,
            parent_id=parent_id,
            owner_id=owner_id,
            auto_archive_duration=auto_archive_duration,
        )
        if message is not None:
            message.thread_id = thread_id
        self.guilds[parent.guild_id].channels[thread_id] = thread
        self.channels[thread_id] = thread
        return thread

    # ----- application commands -----

    def register_commands(self, guild_id: int | None, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replace a scope's commands (bulk overwrite); a name keeps its id across syncs."""
        old_ids = {(c["name"], c.get("type", 1)): c["id"] for c in self.commands.get(guild_id, [])}
        stored = []
        for command in commands:
            kind = command.get("type", 1)
            cid = old_ids.get((command["name"], kind)) or str(self.ids.next())
            entry = {**command, "id": cid, "application_id": str(self.application_id), "type": kind}
            entry.setdefault("default_member_permissions", None)
            entry.setdefault("description", "")  # Discord answers "" for context menus, which send none
            entry["version"] = str(self.ids.next())
            if guild_id is not None:
                entry["guild_id"] = str(guild_id)
            stored.append(entry)
        self.commands[guild_id] = stored
        return stored

    def find_command(self, name: str, guild_id: int | None, kind: int = 1) -> dict[str, Any] | None:
        """The command of this kind (1 chat input, 2 user menu, 3 message menu) a user in
        ``guild_id`` would see under ``name``."""
        scopes = [guild_id, None] if guild_id is not None else [None]
        for scope in scopes:
            for command in self.commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == kind:
                    return command
        return None

    def interaction_by_token(self, token: str) -> FakeInteraction | None:
        """The interaction this webhook token belongs to."""
        return next((i for i in self.interactions.values() if i.token == token), None)
