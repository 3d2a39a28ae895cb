"""REST routes for login, application commands and channels (everything but message bodies)."""

from __future__ import annotations

from aiohttp import web

from .builders import application_json, channel_json, user_json
from .events import EventPublisher
from .http_util import body_of, error_response, json_response, no_content
from .middleware import API_PREFIX
from .world import World

UNKNOWN_CHANNEL = 10003


class CoreRoutes:
    """users/@me, oauth2/applications/@me, command sync, GET/PATCH channel, typing."""

    def __init__(self, world: World, events: EventPublisher) -> None:
        self.world = world
        self.events = events

    def routes(self) -> list[web.RouteDef]:
        """The aiohttp route table for these handlers."""
        a = API_PREFIX
        commands = a + "/applications/{application_id}/commands"
        guild_commands = a + "/applications/{application_id}/guilds/{guild_id}/commands"
        return [
            web.get(a + "/users/@me", self.me),
            web.get(a + "/oauth2/applications/@me", self.application),
            web.get(a + "/applications/@me", self.application),
            web.get(a + "/gateway", self.gateway_url),
            web.get(a + "/gateway/bot", self.gateway_url),
            web.put(commands, self.sync_commands),
            web.get(commands, self.list_commands),
            web.put(guild_commands, self.sync_commands),
            web.get(guild_commands, self.list_commands),
            web.get(a + "/channels/{channel_id}", self.get_channel),
            web.patch(a + "/channels/{channel_id}", self.edit_channel),
            web.post(a + "/channels/{channel_id}/typing", self.typing),
            web.put(a + "/channels/{channel_id}/thread-members/@me", self.typing),
        ]

    async def me(self, request: web.Request) -> web.Response:
        """GET /users/@me: the bot user (login)."""
        return json_response(user_json(self.world.bot))

    async def application(self, request: web.Request) -> web.Response:
        """GET /oauth2/applications/@me: the application (login)."""
        return json_response(application_json(self.world))

    async def gateway_url(self, request: web.Request) -> web.Response:
        """GET /gateway[/bot]: only AutoShardedClient asks."""
        url = self.world.base_url.replace("http://", "ws://") + "/gateway"
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return json_response({"url": url, "shards": self.world.shard_count, "session_start_limit": limit})

    async def sync_commands(self, request: web.Request) -> web.Response:
        """PUT (bulk overwrite) global or guild commands; answers them with ids."""
        if not self._is_our_app(request):
            return error_response(403, "Missing Access", 50001)
        payload = body_of(request).json
        if not isinstance(payload, list):
            return error_response(400, "Invalid Form Body", 50035)
        stored = self.world.register_commands(self._scope(request), payload)
        return json_response(stored)

    async def list_commands(self, request: web.Request) -> web.Response:
        """GET global or guild commands."""
        if not self._is_our_app(request):
            return error_response(403, "Missing Access", 50001)
        return json_response(self.world.commands.get(self._scope(request), []))

    async def get_channel(self, request: web.Request) -> web.Response:
        """GET /channels/{id}: a text channel or thread."""
        channel = self.world.channels.get(int(request.match_info["channel_id"]))
        if channel is None:
            return error_response(404, "Unknown Channel", UNKNOWN_CHANNEL)
        return json_response(channel_json(channel))

    async def edit_channel(self, request: web.Request) -> web.Response:
        """PATCH /channels/{id}: rename; for threads also archive, lock, auto-archive."""
        channel = self.world.channels.get(int(request.match_info["channel_id"]))
        if channel is None:
            return error_response(404, "Unknown Channel", UNKNOWN_CHANNEL)
        data = body_of(request).data
        channel.name = data.get("name", channel.name)
        if channel.is_thread:
            channel.archived = data.get("archived", channel.archived)
            channel.locked = data.get("locked", channel.locked)
            channel.auto_archive_duration = data.get("auto_archive_duration", channel.auto_archive_duration)
            await self.events.thread_updated(channel)
        return json_response(channel_json(channel))

    async def typing(self, request: web.Request) -> web.Response:
        """POST typing / PUT thread-members/@me: accepted, nothing to keep."""
        if int(request.match_info["channel_id"]) not in self.world.channels:
            return error_response(404, "Unknown Channel", UNKNOWN_CHANNEL)
        return no_content()

    def _is_our_app(self, request: web.Request) -> bool:
        return request.match_info["application_id"] == str(self.world.application_id)

    @staticmethod
    def _scope(request: web.Request) -> int | None:
        guild_id = request.match_info.get("guild_id")
        return int(guild_id) if guild_id else None
