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
# Remote models (an OpenAI-compatible server); {model} is the name members chose.
REMOTE_DOWN = "the server that runs {model} is not answering right now: try again in a minute, or choose another model"
REMOTE_BUSY = "the server that runs {model} is too busy right now: try again in a minute"
REMOTE_KEY = "the server that runs {model} refused the bot's credentials: the bot's owner has to fix its settings"
# The stream broke after text was shown: the text stays above this, and it is not saved.
REMOTE_CUT = "the model server stopped in the middle of this paragraph ({reason}), so it was not saved: try again"
# Said once above a paragraph whose model cannot honour some settings in effect ({names}).
NOT_SUPPORTED = "{model} does not support {names} here: written without them"
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


# -- access control and the daily budget (bot/access.py) --------------------------------------
ACCESS_USER_BLOCKED = "you are blocked from using the bot on this server"
ACCESS_ROLE_BLOCKED = "one of your roles is blocked from using the bot on this server"
ACCESS_CHANNEL_BLOCKED = "the bot is switched off in this channel"
ACCESS_CHANNEL_NOT_ALLOWED = "the bot only works in some channels of this server, and this is not one of them"
ACCESS_MEMBER_NOT_ALLOWED = "on this server the bot is only for some members and roles, and you are not among them"
BUDGET_SPENT = ("this server has used today's budget of {limit} tokens: it starts again at midnight UTC, "
                "in {wait}")
# Answers to /access.
ACCESS_SET = "Done: that is now {rule} on this server."
ACCESS_CLEARED = "Done: this server's own rule for that is removed."
ACCESS_NOTHING_TO_CLEAR = "This server had no rule of its own for that."
# /stats: today's use of the server's budget.
USAGE_LINE = "today on this server: {used} tokens written{limit}"
USAGE_LIMIT = " of {limit} (resets in {wait})"


class AccessDenied(UserError):
    """The owner's or the server's access rules refuse this member here."""


class BudgetSpent(UserError):
    """The server has written its daily token budget."""


# -- branching (bot/branching.py) -------------------------------------------------------------
REGENERATE_NOT_YOURS = ("only the member who started this story (or someone with Manage Messages) can write "
                        "its paragraphs again: use \"Continue from here\" to branch it instead")
NOT_A_PARAGRAPH = "that message is not one of my story paragraphs (or its story was forgotten)"
NOT_THE_LAST = ("that is not the story's newest paragraph, so writing it again would lose what follows: "
                "branch from it instead")
BRANCHED = "Branched from paragraph {position} of **{topic}**: the story goes on in {thread}."
BRANCH_OPENING = "Branched from paragraph {position} of {link}: the story so far is its first {position} paragraph(s)."
REGENERATING = "Writing that paragraph again, in its own message."

# -- options a story keeps (bot/story_options.py) ---------------------------------------------
# Added to /settings set's answer in a story's thread when the story keeps its own value of it.
KEPT_OVER_SETTING = (" This thread's story keeps its own {name} ({value}, chosen with paragraph {since}) over "
                     "settings: to change it, give /continue a {name}.")
