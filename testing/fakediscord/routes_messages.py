"""REST routes for channel messages and threads."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .builders import channel_json, message_json
from .events import EventPublisher
from .http_util import Body, body_of, error_response, json_response, no_content
from .middleware import API_PREFIX
from .models import PRIVATE_THREAD, PUBLIC_THREAD, FakeChannel, FakeMessage
from .world import World

# Discord's limits and error codes that a bot can trip over.
MAX_CONTENT = 2000
MAX_HISTORY = 100
UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008
NOT_AUTHOR = 50005
EMPTY_MESSAGE = 50006
WRONG_CHANNEL_TYPE = 50024
INVALID_FORM = 50035
THREAD_EXISTS = 160004


async def edited(world: World, events: EventPublisher, message: FakeMessage, request: web.Request) -> web.Response:
    """Apply a PATCH body to a message found and allowed (channel or webhook route alike)."""
    body = body_of(request)
    problem = invalid_payload(body.data, body, creating=False)
    if problem is not None:
        return problem
    world.edit_message(message, body.data, body.files)
    await events.message_updated(message)
    world.notifier.notify()
    return json_response(message_json(world, message))


async def deleted(events: EventPublisher, message: FakeMessage) -> web.Response:
    """Delete a message found and allowed (channel or webhook route alike)."""
    message.deleted = True
    await events.message_deleted(message)
    return no_content()


def invalid_payload(data: dict[str, Any], body: Body, creating: bool) -> web.Response | None:
    """The 400 Discord would give for an over-long or (on create) empty message, else None."""
    content = data.get("content") or ""
    if len(content) > MAX_CONTENT:
        errors = {
            "content": {
                "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]
            }
        }
        return json_response({"message": "Invalid Form Body", "code": INVALID_FORM, "errors": errors}, 400)
    if creating and not (content or data.get("embeds") or data.get("components") or body.files):
        return error_response(400, "Cannot send an empty message", EMPTY_MESSAGE)
    return None


class MessageRoutes:
    """Send, read, edit and delete channel messages; start threads."""

    def __init__(self, world: World, events: EventPublisher) -> None:
        self.world = world
        self.events = events

    def routes(self) -> list[web.RouteDef]:
        """The aiohttp route table for these handlers."""
        ch = API_PREFIX + "/channels/{channel_id}"
        msg = ch + "/messages/{message_id}"
        return [
            web.post(ch + "/messages", self.send),
            web.get(ch + "/messages", self.history),
            web.get(msg, self.fetch),
            web.patch(msg, self.edit),
            web.delete(msg, self.delete),
            web.post(msg + "/threads", self.thread_from_message),
            web.post(ch + "/threads", self.thread_without_message),
        ]

    async def send(self, request: web.Request) -> web.Response:
        """POST /channels/{id}/messages, JSON or multipart with files."""
        channel = self._channel(request)
        if channel is None:
            return error_response(404, "Unknown Channel", UNKNOWN_CHANNEL)
        body = body_of(request)
        problem = invalid_payload(body.data, body, creating=True)
        if problem is not None:
            return problem
        message = self.world.create_message(channel.id, self.world.bot.id, body.data, body.files)
        await self.events.message_created(message)
        return json_response(message_json(self.world, message))

    async def history(self, request: web.Request) -> web.Response:
        """GET /channels/{id}/messages: newest first, honouring limit/before/after."""
        channel = self._channel(request)
        if channel is None:
            return error_response(404, "Unknown Channel", UNKNOWN_CHANNEL)
        limit = min(int(request.query.get("limit", 50)), MAX_HISTORY)
        before = int(request.query.get("before", 1 << 63))
        after = int(request.query.get("after", 0))
        found = [m for m in self.world.messages_in(channel.id) if after < m.id < before and not m.ephemeral]
        newest = sorted(found, key=lambda m: m.id, reverse=True)[:limit]
        return json_response([message_json(self.world, m) for m in newest])

    async def fetch(self, request: web.Request) -> web.Response:
        """GET one message."""
        message = self._message(request)
        if message is None:
            return error_response(404, "Unknown Message", UNKNOWN_MESSAGE)
        return json_response(message_json(self.world, message))

    async def edit(self, request: web.Request) -> web.Response:
        """PATCH a message; only the bot's own messages may be edited."""
        message = self._message(request)
        if message is None:
            return error_response(404, "Unknown Message", UNKNOWN_MESSAGE)
        if message.author_id != self.world.bot.id:
            return error_response(403, "Cannot edit a message authored by another user", NOT_AUTHOR)
        return await edited(self.world, self.events, message, request)

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE a message."""
        message = self._message(request)
        if message is None:
            return error_response(404, "Unknown Message", UNKNOWN_MESSAGE)
        return await deleted(self.events, message)

    async def thread_from_message(self, request: web.Request) -> web.Response:
        """POST .../messages/{id}/threads: a public thread with the message's id."""
        message = self._message(request)
        if message is None:
            return error_response(404, "Unknown Message", UNKNOWN_MESSAGE)
        if message.thread_id is not None:
            return error_response(400, "A thread has already been created for this message", THREAD_EXISTS)
        return await self._open_thread(request, self.world.channel(message.channel_id), message)

    async def thread_without_message(self, request: web.Request) -> web.Response:
        """POST /channels/{id}/threads: a thread with a new id (type from the body)."""
        channel = self._channel(request)
        if channel is None:
            return error_response(404, "Unknown Channel", UNKNOWN_CHANNEL)
        return await self._open_thread(request, channel, None)

    async def _open_thread(
        self, request: web.Request, parent: FakeChannel, message: FakeMessage | None
    ) -> web.Response:
        if parent.is_thread:
            return error_response(400, "Cannot execute action on this channel type", WRONG_CHANNEL_TYPE)
        data = body_of(request).data
        default_type = PUBLIC_THREAD if message is not None else PRIVATE_THREAD
        thread = self.world.create_thread(
            parent.id,
            data.get("name") or "thread",
            self.world.bot.id,
            int(data.get("type") or default_type),
            int(data.get("auto_archive_duration") or 1440),
            message,
        )
        await self.events.thread_created(thread)
        return json_response(channel_json(thread), 201)

    def _channel(self, request: web.Request) -> FakeChannel | None:
        return self.world.channels.get(int(request.match_info["channel_id"]))

    def _message(self, request: web.Request) -> FakeMessage | None:
        """The live message named in the URL, if it is in that channel."""
        message = self.world.messages.get(int(request.match_info["message_id"]))
        channel_id = int(request.match_info["channel_id"])
        if message is None or message.deleted or message.channel_id != channel_id:
            return None
        return message
