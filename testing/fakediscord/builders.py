"""JSON payloads in Discord's wire format, built from the fake's records."""

from __future__ import annotations

from typing import Any

from .models import FakeAttachment, FakeChannel, FakeGuild, FakeMember, FakeMessage, FakeRole, FakeUser
from .world import World

# Discord sends snowflakes as strings; the helpers below keep that habit.
JSON = dict[str, Any]


def user_json(user: FakeUser) -> JSON:
    """A user object."""
    return {
        "id": str(user.id),
        "username": user.username,
        "global_name": user.global_name,
        "discriminator": "0",
        "avatar": None,
        "bot": user.bot,
        "public_flags": 0,
    }


def member_json(
    world: World, member: FakeMember, with_user: bool = True, with_permissions: bool = False
) -> JSON:
    """A guild member; interactions add the computed ``permissions``."""
    data: JSON = {
        "roles": [str(r) for r in member.role_ids],
        "flags": member.flags,
        "nick": member.nick,
        "joined_at": member.joined_at,
        "deaf": False,
        "mute": False,
        "pending": False,
    }
    if with_user:
        data["user"] = user_json(world.users[member.user_id])
    if with_permissions:
        data["permissions"] = str(world.permissions_of(member.guild_id, member.user_id))
    return data


def role_json(role: FakeRole) -> JSON:
    """A role object."""
    return {
        "id": str(role.id),
        "name": role.name,
        "permissions": str(role.permissions),
        "position": role.position,
        "color": 0,
        "hoist": False,
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def channel_json(channel: FakeChannel) -> JSON:
    """A text channel, or a thread object (with ``thread_metadata``) for threads."""
    data: JSON = {
        "id": str(channel.id),
        "guild_id": str(channel.guild_id),
        "type": channel.type,
        "name": channel.name,
        "position": channel.position,
        "parent_id": str(channel.parent_id) if channel.parent_id else None,
        "rate_limit_per_user": channel.rate_limit_per_user,
        "nsfw": False,
        "flags": 0,
    }
    if not channel.is_thread:
        data.update(topic=None, permission_overwrites=[], last_message_id=None)
        return data
    data.update(
        owner_id=str(channel.owner_id),
        message_count=0,
        member_count=1,
        total_message_sent=0,
        thread_metadata={
            "archived": channel.archived,
            "locked": channel.locked,
            "auto_archive_duration": channel.auto_archive_duration,
            "archive_timestamp": channel.created_at,
            "create_timestamp": channel.created_at,
        },
    )
    return data


def guild_create_json(world: World, guild: FakeGuild) -> JSON:
    """The GUILD_CREATE payload; ``member_count`` equals the members sent, so no chunking."""
    channels = [channel_json(c) for c in guild.channels.values() if not c.is_thread]
    threads = [channel_json(c) for c in guild.channels.values() if c.is_thread and not c.archived]
    members = [member_json(world, m) for m in guild.members.values()]
    return {
        "id": str(guild.id),
        "name": guild.name,
        "owner_id": str(guild.owner_id),
        "unavailable": False,
        "large": False,
        "member_count": len(members),
        "roles": [role_json(r) for r in guild.roles.values()],
        "channels": channels,
        "threads": threads,
        "members": members,
        "emojis": [],
        "stickers": [],
        "features": [],
        "voice_states": [],
        "presences": [],
        "preferred_locale": "en-US",
        "joined_at": guild.members[world.bot.id].joined_at,
    }


def attachment_json(base_url: str, channel_id: int, attachment: FakeAttachment) -> JSON:
    """An attachment object; the URL points at the fake server (which does not serve it)."""
    url = f"{base_url}/attachments/{channel_id}/{attachment.id}/{attachment.filename}"
    return {
        "id": str(attachment.id),
        "filename": attachment.filename,
        "size": len(attachment.data),
        "url": url,
        "proxy_url": url,
        "content_type": attachment.content_type,
        "description": attachment.description,
    }


def message_json(world: World, message: FakeMessage) -> JSON:
    """A message object as REST answers and gateway events carry it."""
    author = world.users[message.author_id]
    data: JSON = {
        "id": str(message.id),
        "channel_id": str(message.channel_id),
        "type": 19 if message.reference_id else 0,
        "content": message.content,
        "author": user_json(author),
        "timestamp": message.created_at,
        "edited_timestamp": message.edited_at,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [attachment_json(world.base_url, message.channel_id, a) for a in message.attachments],
        "embeds": message.embeds,
        "components": message.components,
        "pinned": False,
        "flags": message.flags,
    }
    if message.guild_id is not None:
        data["guild_id"] = str(message.guild_id)
        member = world.guilds[message.guild_id].members.get(message.author_id)
        if member is not None:
            data["member"] = member_json(world, member, with_user=False)
    if message.webhook_id is not None:
        data["webhook_id"] = str(message.webhook_id)
        data["application_id"] = str(world.application_id)
    if message.reference_id is not None:
        data["message_reference"] = {
            "message_id": str(message.reference_id),
            "channel_id": str(message.channel_id),
        }
    if message.thread_id is not None and message.thread_id in world.channels:
        data["thread"] = channel_json(world.channels[message.thread_id])
    return data


def application_json(world: World) -> JSON:
    """GET /oauth2/applications/@me."""
    return {
        "id": str(world.application_id),
        "name": world.bot.username,
        "description": "",
        "icon": None,
        "bot_public": False,
        "bot_require_code_grant": False,
        "owner": user_json(world.bot),
        "verify_key": "0" * 64,
        "flags": 0,
        "team": None,
    }
