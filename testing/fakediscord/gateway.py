"""The gateway websocket: HELLO, IDENTIFY/READY, heartbeats, RESUME, dispatches and control ops."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import WSMsgType, web

from .builders import guild_create_json, member_json, user_json
from .waiting import DEFAULT_TIMEOUT, Notifier
from .world import World, shard_of

# Opcodes.
DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, VOICE, RESUME, RECONNECT = 0, 1, 2, 3, 4, 6, 7
REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 8, 9, 10, 11
# Discord's usual interval; the client beats once at HELLO, so tests never wait for one.
HEARTBEAT_INTERVAL_MS = 41_250
# Close code for a bad token: discord.py treats it as fatal (LoginFailure-like).
AUTHENTICATION_FAILED = 4004
# How many dispatches a session keeps for replay on RESUME.
_REPLAY_BUFFER = 10_000


@dataclass
class GatewayFrame:
    """One frame on the wire: ``"in"`` from the client or ``"out"`` from the fake."""

    direction: Literal["in", "out"]
    op: int
    t: str | None
    s: int | None
    d: Any
    time: float


@dataclass
class GatewayConnection:
    """One websocket connection: where the client connected and how it ended."""

    path: str
    query: dict[str, str]
    opened: float
    close_code: int | None = None  # the fake's own code when it closed first, else the client's


@dataclass
class GatewaySession:
    """An identified session: its sequence counter and the dispatches it may replay."""

    id: str
    intents: int
    seq: int = 0
    ready: bool = False
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_REPLAY_BUFFER))
    shard: tuple[int, int] = (0, 1)
    """(shard id, shard count) from IDENTIFY; a sharded session sees only its shard's guilds."""
    ws: web.WebSocketResponse | None = None  # a shard session's live connection


class Gateway:
    """Serves one client at a time, or one session per shard when IDENTIFY carries a shard
    pair with a count above 1 (then each guild's events go to the session of its shard);
    dispatches go to the live connection or wait for a RESUME."""

    def __init__(self, world: World, notifier: Notifier) -> None:
        self.world = world
        self.notifier = notifier
        self.ws_url = ""  # set by the server once it knows its port
        self.frames: list[GatewayFrame] = []
        self.connections: list[GatewayConnection] = []
        self.session: GatewaySession | None = None
        self.shards: dict[int, GatewaySession] = {}  # shard id -> session, when the client shards
        self._ws: web.WebSocketResponse | None = None
        self._open: dict[web.WebSocketResponse, GatewayConnection] = {}
        self._lock = asyncio.Lock()

    @property
    def ready(self) -> bool:
        """Whether a client is connected and has its READY (or RESUMED)."""
        return (
            self.session is not None and self.session.ready and self._ws is not None and not self._ws.closed
        )

    @property
    def intents(self) -> int:
        """The intents the current session identified with (0 before IDENTIFY)."""
        return self.session.intents if self.session else 0

    def received_ops(self) -> list[int]:
        """Opcodes the client sent, in order."""
        return [f.op for f in self.frames if f.direction == "in"]

    def sent_events(self) -> list[str]:
        """Dispatch names the fake sent, in order."""
        return [f.t for f in self.frames if f.direction == "out" and f.t]

    async def wait_until_ready(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until a client has identified (or resumed) and holds a live connection."""
        await self.notifier.wait_until(lambda: self.ready, timeout, what="a ready gateway session")

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """aiohttp handler for the gateway (and resume) URL."""
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        connection = GatewayConnection(request.path, dict(request.query), time.monotonic())
        self.connections.append(connection)
        self._open[ws] = connection
        try:
            await self._send(ws, {"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_frame(ws, json.loads(msg.data))
        finally:
            self._open.pop(ws, None)
            if self._ws is ws:
                self._ws = None
            for session in self.shards.values():
                if session.ws is ws:
                    session.ws = None
            connection.close_code = connection.close_code or ws.close_code
            self.notifier.notify()
        return ws

    async def dispatch(self, event: str, data: Any) -> None:
        """Send a DISPATCH with the next sequence number (kept for replay if nobody listens);
        when the client shards, to the session of the guild the event belongs to."""
        session = self._session_for(data)
        if session is None:
            raise RuntimeError(f"cannot dispatch {event}: no client has identified yet")
        await self._dispatch_to(session, event, data)

    async def _dispatch_to(self, session: GatewaySession, event: str, data: Any) -> None:
        async with self._lock:
            session.seq += 1
            frame = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
            session.events.append(frame)
            ws = session.ws if session.shard[1] > 1 else self._ws
            if ws is not None:
                await self._send_now(ws, frame)

    def _session_for(self, data: Any) -> GatewaySession | None:
        if not self.shards:
            return self.session
        count = next(iter(self.shards.values())).shard[1]
        guild = data.get("guild_id") if isinstance(data, dict) else None
        return self.shards.get(shard_of(int(guild), count) if guild else 0, self.session)

    def shards_ready(self, count: int) -> bool:
        """Whether `count` shard sessions are identified and connected."""
        return sum(1 for s in self.shards.values() if s.ready and s.ws is not None and not s.ws.closed) >= count

    async def send_reconnect(self) -> None:
        """Send op 7: the client should drop the link and RESUME at resume_gateway_url."""
        await self._send_control({"op": RECONNECT, "d": None})

    async def send_invalid_session(self, resumable: bool = False) -> None:
        """Send op 9: ``resumable=False`` makes the client IDENTIFY again from scratch."""
        await self._send_control({"op": INVALID_SESSION, "d": resumable})

    async def close_all(self) -> None:
        """Close every open connection (server shutdown)."""
        for ws in list(self._open):
            await ws.close(code=1001, message=b"fake discord shutting down")

    # ----- internals -----

    async def _send_control(self, frame: dict[str, Any]) -> None:
        ws = self._ws
        if ws is None:
            raise RuntimeError("no live gateway connection")
        await self._send(ws, frame)

    async def _send(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        async with self._lock:
            await self._send_now(ws, frame)

    async def _send_now(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        """Send while holding the lock, so sequence numbers leave in order; record what left."""
        if ws.closed:
            return  # the client is going away; the session keeps dispatches for replay
        try:
            await ws.send_str(json.dumps(frame))
        except ConnectionResetError:
            return
        self._record("out", frame)

    def _record(self, direction: Literal["in", "out"], frame: dict[str, Any]) -> None:
        op, t, s, d = frame.get("op", -1), frame.get("t"), frame.get("s"), frame.get("d")
        self.frames.append(GatewayFrame(direction, op, t, s, d, time.monotonic()))
        self.notifier.notify()

    async def _on_frame(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        self._record("in", frame)
        op, data = frame.get("op"), frame.get("d")
        if op == HEARTBEAT:
            await self._send(ws, {"op": HEARTBEAT_ACK})
        elif op == IDENTIFY:
            await self._identify(ws, data)
        elif op == RESUME:
            await self._resume(ws, data)
        elif op == REQUEST_MEMBERS:
            await self._member_chunk(data)

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        if data.get("token") != self.world.token:
            await self._reject(ws)
            return
        shard_id, count = (data.get("shard") or [0, 1])[:2]
        session = GatewaySession(uuid.uuid4().hex, int(data.get("intents") or 0), shard=(shard_id, count), ws=ws)
        if count > 1:
            self.shards[shard_id] = session
        if shard_id == 0:
            self.session, self._ws = session, ws
        guilds = [g for g in self.world.guilds.values() if shard_of(g.id, count) == shard_id]
        await self._dispatch_to(
            session,
            "READY",
            {
                "v": 10,
                "user": user_json(self.world.bot),
                "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
                "session_id": session.id,
                "shard": [shard_id, count],
                "resume_gateway_url": f"{self.ws_url}/resume",
                "application": {"id": str(self.world.application_id), "flags": 0},
                "private_channels": [],
                "relationships": [],
            },
        )
        for guild in guilds:
            await self._dispatch_to(session, "GUILD_CREATE", guild_create_json(self.world, guild))
        session.ready = True
        self.notifier.notify()

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        session = next((s for s in self.shards.values() if s.id == data.get("session_id")), self.session)
        if data.get("token") != self.world.token:
            await self._reject(ws)
            return
        if session is None or data.get("session_id") != session.id:
            await self._send(ws, {"op": INVALID_SESSION, "d": False})
            return
        last_seen = int(data.get("seq") or 0)
        async with self._lock:
            session.ws = ws
            if session is self.session:
                self._ws = ws
            for event in list(session.events):
                if event["s"] > last_seen:
                    await self._send_now(ws, event)
        await self._dispatch_to(session, "RESUMED", {})
        self.notifier.notify()

    async def _reject(self, ws: web.WebSocketResponse) -> None:
        """Close with 4004, which discord.py treats as fatal."""
        self._open[ws].close_code = AUTHENTICATION_FAILED
        await ws.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")

    async def _member_chunk(self, data: dict[str, Any]) -> None:
        """Answer a member request with every member in one chunk."""
        guild = self.world.guilds.get(int(data.get("guild_id") or 0))
        members = [member_json(self.world, m) for m in guild.members.values()] if guild else []
        chunk = {
            "guild_id": str(data.get("guild_id")),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await self.dispatch("GUILD_MEMBERS_CHUNK", chunk)
