"""REST routes that answer interactions: the callback and the interaction webhook."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .builders import message_json
from .events import EventPublisher
from .http_util import body_of, error_response, json_response, no_content
from .interactions import (
    CALLBACK_TYPES,
    CHANNEL_MESSAGE,
    COMPONENT_ONLY,
    DEFERRED_CHANNEL_MESSAGE,
    UPDATE_MESSAGE,
    FakeInteraction,
)
from .middleware import API_PREFIX
from .models import EPHEMERAL, LOADING, FakeMessage
from .routes_messages import INVALID_FORM, UNKNOWN_MESSAGE, deleted, edited, invalid_payload
from .world import World

UNKNOWN_WEBHOOK = 10015
UNKNOWN_INTERACTION = 10062
ALREADY_ACKNOWLEDGED = 40060
# Callback types whose answer carries the message they created or changed.
_WITH_MESSAGE = (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, UPDATE_MESSAGE)


class InteractionRoutes:
    """POST /interactions/{id}/{token}/callback and /webhooks/{app}/{token}[/messages/{id}]."""

    def __init__(self, world: World, events: EventPublisher) -> None:
        self.world = world
        self.events = events

    def routes(self) -> list[web.RouteDef]:
        """The aiohttp route table for these handlers."""
        hook = API_PREFIX + "/webhooks/{application_id}/{token}"
        return [
            web.post(API_PREFIX + "/interactions/{interaction_id}/{token}/callback", self.callback),
            web.post(hook, self.followup),
            web.get(hook + "/messages/{message_id}", self.get_message),
            web.patch(hook + "/messages/{message_id}", self.edit_message),
            web.delete(hook + "/messages/{message_id}", self.delete_message),
        ]

    async def callback(self, request: web.Request) -> web.Response:
        """The initial response (types 4-9); answers 200 JSON as with ``with_response=1``."""
        ix = self.world.interactions.get(int(request.match_info["interaction_id"]))
        if ix is None or ix.token != request.match_info["token"]:
            return error_response(404, "Unknown interaction", UNKNOWN_INTERACTION)
        if ix.response_type is not None:
            return error_response(400, "Interaction has already been acknowledged.", ALREADY_ACKNOWLEDGED)
        body = body_of(request)
        rtype = body.data.get("type")
        data: dict[str, Any] = body.data.get("data") or {}
        if rtype not in CALLBACK_TYPES or (rtype in COMPONENT_ONLY and ix.source_message_id is None):
            return error_response(400, "Invalid Form Body", INVALID_FORM)
        if rtype in (CHANNEL_MESSAGE, UPDATE_MESSAGE):
            problem = invalid_payload(data, body, creating=rtype == CHANNEL_MESSAGE)
            if problem is not None:
                return problem
        message = await self._respond(ix, rtype, data, body.files)
        ix.response_type = rtype
        self.world.notifier.notify()
        info: dict[str, Any] = {
            "id": str(ix.id),
            "type": ix.type,
            "response_message_loading": rtype == DEFERRED_CHANNEL_MESSAGE,
            "response_message_ephemeral": ix.ephemeral,
        }
        answer: dict[str, Any] = {"interaction": info}
        if message is not None:
            info["response_message_id"] = str(message.id)
            if rtype in _WITH_MESSAGE:
                answer["resource"] = {"type": rtype, "message": message_json(self.world, message)}
        return json_response(answer)

    async def _respond(
        self, ix: FakeInteraction, rtype: int, data: dict[str, Any], files: list[Any]
    ) -> FakeMessage | None:
        """Apply the callback to the world; return the @original message it concerns."""
        if rtype in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE):
            ix.ephemeral = bool(int(data.get("flags") or 0) & EPHEMERAL)
            if rtype == DEFERRED_CHANNEL_MESSAGE:  # a "thinking..." placeholder, flags only
                data = {"flags": (EPHEMERAL if ix.ephemeral else 0) | LOADING}
            message = self._new_message(ix, data, files)
            ix.original_message_id = message.id
            await self.events.message_created(message)
            return message
        if rtype in COMPONENT_ONLY:
            source = self.world.messages[ix.source_message_id or 0]
            ix.original_message_id = source.id
            if rtype == UPDATE_MESSAGE:
                self.world.edit_message(source, data, files)
                await self.events.message_updated(source)
            return source
        return None  # autocomplete result or modal: no message

    async def followup(self, request: web.Request) -> web.Response:
        """POST a followup; after a thinking defer the first one replaces the placeholder."""
        ix = self._interaction(request)
        if ix is None or ix.response_type is None:
            return error_response(404, "Unknown Webhook", UNKNOWN_WEBHOOK)
        body = body_of(request)
        problem = invalid_payload(body.data, body, creating=True)
        if problem is not None:
            return problem
        original = ix.original
        if original is not None and original.loading and not original.deleted and not ix.followup_ids:
            self.world.edit_message(original, body.data, body.files)
            message = original
            await self.events.message_updated(message)
        else:
            message = self._new_message(ix, body.data, body.files)
            await self.events.message_created(message)
        ix.followup_ids.append(message.id)
        self.world.notifier.notify()
        if request.query.get("wait", "").lower() in ("1", "true"):
            return json_response(message_json(self.world, message))
        return no_content()

    async def get_message(self, request: web.Request) -> web.Response:
        """GET @original or a followup."""
        message = self._target(request)
        if message is None:
            return error_response(404, "Unknown Message", UNKNOWN_MESSAGE)
        return json_response(message_json(self.world, message))

    async def edit_message(self, request: web.Request) -> web.Response:
        """PATCH @original or a followup."""
        message = self._target(request)
        if message is None:
            return error_response(404, "Unknown Message", UNKNOWN_MESSAGE)
        return await edited(self.world, self.events, message, request)

    async def delete_message(self, request: web.Request) -> web.Response:
        """DELETE @original or a followup."""
        message = self._target(request)
        if message is None:
            return error_response(404, "Unknown Message", UNKNOWN_MESSAGE)
        return await deleted(self.events, message)

    def _new_message(self, ix: FakeInteraction, data: dict[str, Any], files: list[Any]) -> FakeMessage:
        return self.world.create_message(
            ix.channel_id,
            self.world.bot.id,
            data,
            files,
            webhook_id=self.world.application_id,
            interaction_id=ix.id,
        )

    def _interaction(self, request: web.Request) -> FakeInteraction | None:
        if request.match_info["application_id"] != str(self.world.application_id):
            return None
        return self.world.interaction_by_token(request.match_info["token"])

    def _target(self, request: web.Request) -> FakeMessage | None:
        """The live message a webhook URL names, if this interaction owns it."""
        ix = self._interaction(request)
        if ix is None:
            return None
        raw = request.match_info["message_id"]
        message_id = ix.original_message_id if raw == "@original" else int(raw)
        if message_id is None or not ix.owns_message(message_id):
            return None
        message = self.world.messages.get(message_id)
        return None if message is None or message.deleted else message
