"""The one error path for Discord: expected failures become friendly private replies, the rest an
apology with an error id (the traceback goes to the log, never to the user)."""

from __future__ import annotations

import logging
import secrets

import discord
from discord import app_commands

from bot.formatting import defuse_mentions
from bot.messages import UserError
from bot.storage import StorageUnavailable
from models.params import SettingError

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
# Set by a cog-level handler that already answered, so the tree-level handler stays quiet.
HANDLED = "storybot.error_handled"
# Set by a command whose "thinking..." placeholder is ephemeral: an error may replace it there.
PRIVATE_DEFER = "storybot.private_defer"
# Set once a stream posted into the deferred reply: error messages must not overwrite it.
STREAMING = "storybot.streaming"
# Errors whose message is written for users (UserError, SettingError, StorageUnavailable) or by
# discord.py for them.
EXPECTED = (UserError, SettingError, StorageUnavailable, app_commands.CheckFailure,
            app_commands.TransformerError)


def error_id() -> str:
    """A short id that ties the apology a user sees to the traceback in the log."""
    return secrets.token_hex(4)


def friendly(error: BaseException) -> str:
    """The message for an expected error."""
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Sorry: slow down a little: try again in {error.retry_after:.0f} s."
    text = str(error).strip()
    if isinstance(error, app_commands.CheckFailure) and not text:
        text = "you can't use this command here"
    return f"Sorry: {text}"


def unwrap(error: BaseException) -> BaseException:
    """The exception a command raised, out of discord.py's CommandInvokeError wrapper."""
    if isinstance(error, app_commands.CommandInvokeError):
        return error.original
    return error


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Answer `interaction` for `error`: friendly and private if expected, else an apology with an id."""
    if interaction.extras.get(HANDLED):
        return
    error = unwrap(error)
    if isinstance(error, EXPECTED):
        text = friendly(error)
    elif isinstance(error, discord.Forbidden):
        log.warning("missing Discord permission in channel %s: %s", interaction.channel_id, error.text)
        text = "Sorry: I'm missing a permission in this channel (send messages, threads or embeds)."
    else:
        ident = error_id()
        command = interaction.command.qualified_name if interaction.command else "component"
        log.exception("unexpected error %s in %s (guild %s, channel %s)", ident, command,
                      interaction.guild_id, interaction.channel_id, exc_info=error)
        text = f"Sorry, something went wrong on my side (error id {ident})."
    await reply_privately(interaction, text)


async def reply_privately(interaction: discord.Interaction, text: str) -> None:
    """Reply so that, where Discord allows it, only the user sees it.

    A private "thinking..." placeholder is replaced by the reply. A public one is deleted and
    the reply follows privately, so that no refusal is left in the channel (a stream that took
    the placeholder over keeps it, and the reply follows privately too).
    """
    response = interaction.response
    text = defuse_mentions(text)  # refusals quote what members typed
    try:
        if not response.is_done():
            await response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        elif (response.type is discord.InteractionResponseType.deferred_channel_message
              and not interaction.extras.get(STREAMING)):
            if interaction.extras.get(PRIVATE_DEFER):
                await interaction.edit_original_response(content=text, view=None, allowed_mentions=NO_MENTIONS)
                return
            await interaction.delete_original_response()
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        else:
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException as failure:  # the interaction expired or Discord is down
        log.warning("could not tell the user about an error: %s", failure)
