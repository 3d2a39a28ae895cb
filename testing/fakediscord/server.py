"""FakeDiscord: REST and gateway on one loopback port, plus the handles tests drive it with."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web

from .client import ClientPatch
from .events import EventPublisher
from .faults import FaultInjector
from .gateway import Gateway
from .interactions import FakeInteraction
from .middleware import API_PREFIX, make_rest_middleware
from .models import FakeChannel, FakeGuild, FakeMember, FakeMessage, FakeRole, FakeUser
from .options import Option
from .recorder import CallLog, RecordedCall
from .routes_core import CoreRoutes
from .routes_interactions import InteractionRoutes
from .routes_messages import MessageRoutes
from .seed import Seed, seed_world
from .user_actions import UserActions
from .waiting import DEFAULT_TIMEOUT, Notifier
from .world import World

T = TypeVar("T")
HOST = "127.0.0.1"
DEFAULT_TOKEN = "fake-bot-token"


class FakeDiscord:
    """A fake Discord that the real discord.py client talks to over 127.0.0.1.

    Populate it (``seed_default`` or ``add_*``), ``await start()``, ``point_client_here()``, run
    a client, then act as users (``slash``, ``click``, ``user_message``) and assert on
    ``calls``, ``messages_in`` and the interaction records.
    """

    def __init__(self, token: str = DEFAULT_TOKEN, bot_name: str = "StoryBot") -> None:
        self.notifier = Notifier()
        self.world = World(self.notifier, token, bot_name)
        self.log = CallLog(self.notifier)
        self.faults = FaultInjector()
        self.gateway = Gateway(self.world, self.notifier)
        self.events = EventPublisher(self.world, self.gateway)
        self.users = UserActions(self.world, self.gateway, self.events)
        self._seed: Seed | None = None
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def token(self) -> str:
        """The bot token REST and the gateway accept (assign ``world.token`` to rotate it)."""
        return self.world.token

    # ----- lifecycle -----

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application(middlewares=[make_rest_middleware(self.log, self.faults, self.world)])
        for routes in (CoreRoutes, MessageRoutes, InteractionRoutes):
            app.add_routes(routes(self.world, self.events).routes())
        app.add_routes(
            [web.get("/gateway", self.gateway.handle), web.get("/gateway/resume", self.gateway.handle)]
        )
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        self.world.base_url = self.base_url
        self.gateway.ws_url = self.gateway_url

    async def stop(self) -> None:
        """Close gateway connections and stop listening."""
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        """The port it listens on (0 before ``start``)."""
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{HOST}:{self._port}"

    @property
    def api_url(self) -> str:
        """The REST base discord.py should use: ``http://127.0.0.1:PORT/api/v10``."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """The gateway URL: ``ws://127.0.0.1:PORT/gateway``."""
        return f"ws://{HOST}:{self._port}/gateway"

    def point_client_here(self) -> ClientPatch:
        """Point discord.py's globals at this server; restore via the result (a context manager)."""
        if not self._port:
            raise RuntimeError("start() the server before pointing the client at it")
        return ClientPatch(self.api_url, self.gateway_url)

    # ----- population -----

    def seed_default(self) -> Seed:
        """Add the standard guild (see ``seed.Seed``) and remember it as ``seed``."""
        self._seed = seed_world(self.world)
        return self._seed

    @property
    def seed(self) -> Seed:
        """The standard guild's handles (after ``seed_default``)."""
        if self._seed is None:
            raise RuntimeError("no seed: use the fake_discord fixture or call seed_default()")
        return self._seed

    @property
    def bot(self) -> FakeUser:
        """The bot user."""
        return self.world.bot

    def add_guild(self, name: str) -> FakeGuild:
        """A new guild (with @everyone and the bot as a member)."""
        return self.world.add_guild(name)

    def add_role(self, guild_id: int, name: str, permissions: int) -> FakeRole:
        """A new role with this permission bitfield."""
        return self.world.add_role(guild_id, name, permissions)

    def add_text_channel(self, guild_id: int, name: str) -> FakeChannel:
        """A new text channel."""
        return self.world.add_text_channel(guild_id, name)

    def add_user(self, username: str, bot: bool = False) -> FakeUser:
        """A new user: a human, or another bot (whose messages a bot should ignore)."""
        return self.world.add_user(username, bot=bot)

    def add_member(self, guild_id: int, user_id: int, role_ids: Sequence[int] = ()) -> FakeMember:
        """Make a user a guild member with these roles."""
        return self.world.add_member(guild_id, user_id, role_ids)

    # ----- what happened -----

    @property
    def calls(self) -> list[RecordedCall]:
        """Every REST call so far, in arrival order."""
        return self.log.calls

    def calls_to(self, method: str, path_substring: str = "") -> list[RecordedCall]:
        """Calls with this method (``"*"``: any) whose path contains the substring."""
        return self.log.calls_to(method, path_substring)

    def messages_in(self, channel_id: int, include_deleted: bool = False) -> list[FakeMessage]:
        """The channel's (or thread's) messages as they read now, ephemeral ones included."""
        return self.world.messages_in(channel_id, include_deleted)

    def threads_of(self, channel_id: int) -> list[FakeChannel]:
        """Threads under this channel."""
        return self.world.threads_of(channel_id)

    def interaction_responses(self, interaction_id: int) -> list[RecordedCall]:
        """The accepted (2xx) callback calls for this interaction (normally exactly one)."""
        path = f"/interactions/{interaction_id}/"
        return [c for c in self.log.calls_to("POST", path) if c.ok]

    # ----- waiting -----

    async def wait_until(self, check: Callable[[], T | None], timeout: float = DEFAULT_TIMEOUT) -> T:
        """Wait until ``check()`` is truthy (re-checked after every call and gateway frame)."""
        return await self.notifier.wait_until(check, timeout, describe=self.log.describe_recent)

    async def wait_for_call(
        self, predicate: Callable[[RecordedCall], bool], timeout: float = DEFAULT_TIMEOUT, since: int = 0
    ) -> RecordedCall:
        """Wait for an answered REST call (from index ``since`` on) matching ``predicate``."""
        return await self.log.wait_for_call(predicate, timeout, since)

    async def wait_for_message(
        self,
        channel_id: int,
        check: Callable[[FakeMessage], bool] = lambda m: True,
        after: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> FakeMessage:
        """Wait for a live message in the channel with id > ``after`` that ``check`` accepts."""

        def find() -> FakeMessage | None:
            return next((m for m in self.messages_in(channel_id) if m.id > after and check(m)), None)

        return await self.notifier.wait_until(
            find, timeout, what=f"a message in channel {channel_id}", describe=self.log.describe_recent
        )

    async def wait_until_ready(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until a client has identified (or resumed) on the gateway."""
        await self.gateway.wait_until_ready(timeout)

    # ----- faults and gateway control -----

    def inject(
        self,
        method: str,
        path_regex: str,
        status: int | None = 429,
        times: int = 1,
        retry_after: float = 0.1,
        delay: float = 0.0,
    ) -> None:
        """Fail (or delay) the next ``times`` matching REST calls; see ``FaultInjector.inject``."""
        self.faults.inject(method, path_regex, status, times, retry_after, delay)

    def inject_rate(
        self, fraction: float, statuses: Sequence[int] = (429,), seed: int = 0, **kwargs: Any
    ) -> None:
        """Fail a random fraction of REST calls; see ``FaultInjector.inject_rate``."""
        self.faults.inject_rate(fraction, statuses, seed, **kwargs)

    async def send_reconnect(self) -> None:
        """Gateway op 7: the client should resume."""
        await self.gateway.send_reconnect()

    async def send_invalid_session(self, resumable: bool = False) -> None:
        """Gateway op 9."""
        await self.gateway.send_invalid_session(resumable)

    # ----- users acting -----

    async def slash(
        self,
        guild_id: int,
        channel_id: int,
        user_id: int,
        name: str,
        options: dict[str, Any] | list[Option] | None = None,
        subcommand: str | None = None,
        group: str | None = None,
    ) -> FakeInteraction:
        """A user runs a synced slash command; see ``UserActions.slash``."""
        return await self.users.slash(guild_id, channel_id, user_id, name, options, subcommand, group)

    async def autocomplete(
        self,
        guild_id: int,
        channel_id: int,
        user_id: int,
        name: str,
        typed: dict[str, str],
        focused: str,
        subcommand: str | None = None,
    ) -> FakeInteraction:
        """A user types into an option with autocomplete; see ``UserActions.autocomplete``."""
        return await self.users.autocomplete(guild_id, channel_id, user_id, name, typed, focused, subcommand)

    async def click(
        self, guild_id: int, channel_id: int, user_id: int, message_id: int, custom_id: str, **kwargs: Any
    ) -> FakeInteraction:
        """A user clicks a component; see ``UserActions.click``."""
        return await self.users.click(guild_id, channel_id, user_id, message_id, custom_id, **kwargs)

    async def message_command(
        self, guild_id: int, channel_id: int, user_id: int, name: str, message_id: int
    ) -> FakeInteraction:
        """A user runs a message context menu command; see ``UserActions.message_command``."""
        return await self.users.message_command(guild_id, channel_id, user_id, name, message_id)

    async def user_message(self, channel_id: int, user_id: int, content: str) -> FakeMessage:
        """A user posts a message."""
        return await self.users.user_message(channel_id, user_id, content)
