"""Which messages show a story's paragraphs: noted once shown, the newest one's (it carries the
buttons), and what /forget deletes with the messages that may still carry buttons.

The first paragraph is the reply in the channel (a thread starts from it); later ones are in the
story's thread, or in the channel when it has none.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.messages import PermissionDenied
from bot.place import Place
from bot.storage import Storage, Story, Turn


@dataclass(frozen=True)
class Forgotten:
    """What /forget deleted: how many turns, the stories, and the (channel id, message id) of
    each message that may still carry their buttons."""

    turns: int
    stories: tuple[Story, ...]
    button_messages: tuple[tuple[int, int], ...]


def shown_in(story: Story, turn: Turn) -> int:
    """The channel (or thread) id of the messages that show `turn`."""
    return story.channel_id if turn.position == 0 else story.thread_id or story.channel_id


async def record_messages(storage: Storage, turn: Turn, message_ids: list[int]) -> tuple[int, int] | None:
    """Note the messages that show `turn`. Returns (channel id, message id) of the last message
    of the story's paragraph before it, which should lose its buttons, if any."""
    try:
        await storage.set_turn_messages(turn.id, message_ids)
    except LookupError:  # forgotten (/forget, retention) while it was shown
        return None
    story = await storage.get_story(turn.story_id)
    earlier = [t for t in await storage.turns(turn.story_id)
               if t.position < turn.position and t.kind != "user" and t.message_ids]
    if story is None or not earlier:
        return None
    return shown_in(story, earlier[-1]), earlier[-1].message_ids[-1]


async def latest_messages(storage: Storage, story: Story) -> tuple[int, ...]:
    """The messages that show the story's newest paragraph (empty when not known)."""
    generated = [t for t in await storage.turns(story.id) if t.kind != "user"]
    return generated[-1].message_ids if generated else ()


async def forget(storage: Storage, place: Place) -> Forgotten:
    """Delete the stories of this channel or thread; says what went and which messages may still
    carry their buttons (read from the stored stories first), so fronts can tidy up."""
    if not place.can_manage_messages:
        raise PermissionDenied("forgetting history needs the Manage Messages permission")
    stories = await storage.stories_here(place.conversation_id)
    carriers: dict[int, int] = {}  # message id -> channel id
    for story in stories:
        generated = [t for t in await storage.turns(story.id) if t.kind != "user" and t.message_ids]
        if generated:  # the newest paragraph's last message carries the buttons
            carriers[generated[-1].message_ids[-1]] = shown_in(story, generated[-1])
        if story.message_id is not None:  # the first message, which the thread starts from
            carriers.setdefault(story.message_id, story.channel_id)
    turns = await storage.forget(place.conversation_id)
    return Forgotten(turns, tuple(stories), tuple((c, m) for m, c in carriers.items()))
