"""The record of one dispatched interaction, and waits on how the bot answered it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .models import FakeMessage
from .waiting import DEFAULT_TIMEOUT
from .world import World

# Interaction types.
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
APPLICATION_COMMAND_AUTOCOMPLETE = 4

# Interaction callback (response) types.
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9
CALLBACK_TYPES = (
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    UPDATE_MESSAGE,
    AUTOCOMPLETE_RESULT,
    MODAL,
)
# Only component interactions may answer by updating the message they came from.
COMPONENT_ONLY = (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE)


@dataclass(eq=False)
class FakeInteraction:
    """An interaction a fake user started, and what the bot has done with it so far.

    ``original_message_id`` is the @original message: the reply (types 4/5) or, for a component
    answered with type 6/7, the message the component is on. ``followup_ids`` lists followups in
    order; after a thinking defer the first followup *replaces* the loading message, so its id
    is the original's id.
    """

    id: int
    token: str
    type: int
    guild_id: int | None
    channel_id: int
    user_id: int
    payload: dict[str, Any] = field(repr=False)
    world: World = field(repr=False)
    source_message_id: int | None = None
    response_type: int | None = None
    ephemeral: bool = False
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)

    @property
    def original(self) -> FakeMessage | None:
        """The @original message as it reads now, if there is one."""
        if self.original_message_id is None:
            return None
        return self.world.messages.get(self.original_message_id)

    @property
    def followups(self) -> list[FakeMessage]:
        """Followup messages as they read now, in the order they were sent."""
        return [self.world.messages[i] for i in self.followup_ids if i in self.world.messages]

    def owns_message(self, message_id: int) -> bool:
        """Whether the interaction's webhook token may edit or delete this message."""
        return message_id == self.original_message_id or message_id in self.followup_ids

    async def wait_for_response(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Wait until the bot answered the callback; return the response type (4-9)."""
        return await self.world.notifier.wait_until(
            lambda: self.response_type, timeout, what=f"a response to interaction {self.id}"
        )

    async def wait_for_followups(self, count: int = 1, timeout: float = DEFAULT_TIMEOUT) -> list[FakeMessage]:
        """Wait until at least ``count`` followups were sent; return them all."""
        return await self.world.notifier.wait_until(
            lambda: self.followups if len(self.followup_ids) >= count else None,
            timeout,
            what=f"{count} followup(s) to interaction {self.id}",
        )

    async def wait_until_original(
        self, check: Callable[[FakeMessage], bool], timeout: float = DEFAULT_TIMEOUT
    ) -> FakeMessage:
        """Wait until the @original message exists and ``check`` accepts it."""

        def ready() -> FakeMessage | None:
            original = self.original
            return original if original is not None and check(original) else None

        return await self.world.notifier.wait_until(ready, timeout, what=f"interaction {self.id}'s original")
