"""Where a Discord action happened, as the service's `Place`, and the reusable command checks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import discord
from discord import app_commands

from bot.messages import SHUTTING_DOWN
from bot.service import Place

T = TypeVar("T")


def _channel_ids(channel: Any, channel_id: int) -> tuple[int, int | None]:
    """(channel, thread): a thread's settings and stories layer over its parent channel's."""
    if isinstance(channel, discord.Thread):
        return channel.parent_id, channel.id
    return channel_id, None


def place_of(interaction: discord.Interaction) -> Place:
    """The Place of a slash command or click, with the author's permissions in that channel."""
    channel_id, thread_id = _channel_ids(interaction.channel, interaction.channel_id or 0)
    permissions = interaction.permissions
    return Place(
        channel_id=channel_id,
        user_id=interaction.user.id,
        guild_id=interaction.guild_id,
        thread_id=thread_id,
        can_manage_channel=permissions.manage_channels,
        can_manage_guild=permissions.manage_guild,
        can_manage_messages=permissions.manage_messages,
    )


def place_of_click(interaction: discord.Interaction) -> Place:
    """Like `place_of`, but a click on a message that starts a thread belongs to that thread's story."""
    place = place_of(interaction)
    message = interaction.message
    if place.thread_id is None and message is not None and message.thread is not None:
        return dataclasses.replace(place, thread_id=message.thread.id)
    return place


def place_of_message(message: discord.Message) -> Place:
    """The Place of a member's message (only used to find a story; it changes nothing)."""
    channel_id, thread_id = _channel_ids(message.channel, message.channel.id)
    return Place(channel_id=channel_id, user_id=message.author.id,
                 guild_id=message.guild.id if message.guild else None, thread_id=thread_id,
                 can_manage_channel=False, can_manage_guild=False, can_manage_messages=False)


class BotShuttingDown(app_commands.CheckFailure):
    """Every command is refused while the bot shuts down."""

    def __init__(self) -> None:
        super().__init__(SHUTTING_DOWN)


class NotInThread(app_commands.CheckFailure):
    """The command only makes sense inside a story's thread."""


def in_thread() -> Callable[[T], T]:
    """Check: the command was used inside a thread."""

    def predicate(interaction: discord.Interaction) -> bool:
        if isinstance(interaction.channel, discord.Thread):
            return True
        raise NotInThread("use this inside a story's thread (or click Continue under a paragraph)")

    return app_commands.check(predicate)


def may_stop(interaction: discord.Interaction, author_id: int) -> bool:
    """Whoever asked for a paragraph may stop it, and so may anyone who can manage messages."""
    return interaction.user.id == author_id or interaction.permissions.manage_messages
