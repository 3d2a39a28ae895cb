"""The REST front door: record each call, inject faults, check the token, answer unknown routes."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .faults import RATE_LIMIT_VIA, Fault, FaultInjector
from .http_util import BODY_KEY, error_response, json_response, parse_body
from .recorder import CallLog, RecordedCall
from .world import World

API_PREFIX = "/api/v10"
# Webhook and interaction-callback calls authenticate by the token in the URL, not a header.
_TOKEN_IN_URL = ("/webhooks/", "/interactions/")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def make_rest_middleware(log: CallLog, faults: FaultInjector, world: World) -> Middleware:
    """Build the middleware for one server; requests outside /api/v10 (the gateway) pass through."""

    @web.middleware
    async def rest_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX):
            return await handler(request)
        body = await parse_body(request)
        request[BODY_KEY] = body
        call = RecordedCall(
            method=request.method,
            path=request.path[len(API_PREFIX) :],
            route=_route_name(request),
            query=dict(request.query),
            json=body.json,
            files=body.files,
            time=time.monotonic(),
            authorization=request.headers.get("Authorization"),
        )
        log.add(call)
        fault = faults.take(call.method, call.path)
        response: web.StreamResponse | None = await _apply_fault(fault) if fault else None
        injected = response is not None
        if response is None:
            response = await _answer(request, handler, call, world.token)
        log.answered(call, response.status, _json_of(response), injected)
        return response

    return rest_middleware


def _route_name(request: web.Request) -> str:
    """The matched route template relative to /api/v10, or ``"UNKNOWN"``."""
    match_info = request.match_info
    resource = match_info.route.resource
    if match_info.http_exception is not None or resource is None:
        return "UNKNOWN"
    return resource.canonical[len(API_PREFIX) :]


async def _apply_fault(fault: Fault) -> web.Response | None:
    """Wait the fault's delay, then build its error answer (None: a delay only)."""
    if fault.delay > 0:
        await asyncio.sleep(fault.delay)
    if fault.status is None:
        return None
    if fault.status == 429:
        headers = {
            "Via": RATE_LIMIT_VIA,
            "Retry-After": str(math.ceil(fault.retry_after)),
            "X-RateLimit-Scope": "user",
        }
        body = {"message": "You are being rate limited.", "retry_after": fault.retry_after, "global": False}
        return json_response(body, 429, headers)
    return error_response(fault.status, f"{fault.status}: injected fault")


async def _answer(
    request: web.Request, handler: Handler, call: RecordedCall, token: str
) -> web.StreamResponse:
    """Route the call: JSON 404/405 for unknown routes, 401 for a bad token, else the handler."""
    if call.route == "UNKNOWN":
        status = request.match_info.http_exception.status if request.match_info.http_exception else 404
        return error_response(
            status, f"{status}: Not Found" if status == 404 else f"{status}: Method Not Allowed"
        )
    if not call.path.startswith(_TOKEN_IN_URL) and call.authorization != f"Bot {token}":
        return error_response(401, "401: Unauthorized")
    return await handler(request)


def _json_of(response: web.StreamResponse) -> Any:
    """The JSON a response carried, for the call log."""
    if not isinstance(response, web.Response) or response.content_type != "application/json":
        return None
    body = response.body
    return json.loads(body) if isinstance(body, bytes | bytearray) and body else None
