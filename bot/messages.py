"""Every sentence a user reads about a failure, and the UserError family that carries them.

The engine and storage report what went wrong in their own terms (an event's reason, an
exception); the service and the fronts turn that into these sentences, so the wording lives
in one place and no layer below the service holds text meant for users.
"""

from __future__ import annotations

# A request still waiting or running when the bot stops ends with this.
SHUTTING_DOWN = "the bot is shutting down: try again in a minute"
# The requests of a batch whose step failed end with this; the reason is a one-line summary.
STEP_FAILED = "the model failed while writing this paragraph ({reason}): please try again"
# How a paragraph ends when the database cannot take it; the reason is StorageUnavailable's.
NOT_SAVED = "I wrote this paragraph but could not save it ({reason}): please try again in a moment."
# The request's model could not be loaded, nor the default; the reason is the default's error.
NO_MODEL = "no model could be loaded: {reason}"
# Said above a paragraph the default model wrote in place of the one asked for.
FELL_BACK = "model {wanted} is not available ({reason}); used {used}"
GENERATION_FAILED = "generation failed"
# What a click under a paragraph hears once its story's history was deleted (/forget, retention).
FORGOTTEN = "this story was forgotten (its history was deleted), so it can't go on: start a new one with /write"
# /forget's answer; BUTTONS_REMOVED is added when it took buttons away.
FORGET_DONE = "Forgotten: {turns} paragraph(s) of history here.{buttons} New stories start fresh."
BUTTONS_REMOVED = " The buttons under {count} of its messages are removed."
# Refuses `story_channel on` when Discord does not send the bot what members write.
NEEDS_MESSAGE_CONTENT = (
    "story_channel needs the Message Content intent, which this bot runs without: its owner can "
    "switch on \"Message Content Intent\" on the Developer Portal's Bot page and restart the bot")


class UserError(Exception):
    """An expected failure with a message fit to show the user as it is."""


class PermissionDenied(UserError):
    """The member lacks a permission the action needs."""


class NoStory(UserError):
    """There is no story where the member asked for one."""


class ShuttingDown(UserError):
    """The bot takes no new requests: it is on its way out."""

    def __init__(self) -> None:
        super().__init__(SHUTTING_DOWN)
