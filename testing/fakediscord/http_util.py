"""Reading request bodies and writing responses exactly as discord.py expects them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from .recorder import RecordedFile


@dataclass
class Body:
    """A request body: its JSON (or multipart ``payload_json``) and any uploaded files."""

    json: Any = None
    files: list[RecordedFile] = field(default_factory=list)

    @property
    def data(self) -> dict[str, Any]:
        """The JSON body as a dict (empty when there was none)."""
        return self.json if isinstance(self.json, dict) else {}


# Where a handler finds the parsed body (set once by the middleware: multipart reads only once).
BODY_KEY = web.RequestKey("fakediscord.body", Body)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer whose Content-Type is exactly ``application/json``.

    discord.py compares the header for equality, so aiohttp's ``json_response`` (which appends
    ``; charset=utf-8``) would make it treat every body as text.
    """
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(body=json.dumps(payload).encode(), status=status, headers=all_headers)


def error_response(
    status: int, message: str, code: int = 0, headers: dict[str, str] | None = None
) -> web.Response:
    """A Discord-style error body: ``{"message": ..., "code": ...}``."""
    return json_response({"message": message, "code": code}, status, headers)


def no_content() -> web.Response:
    """204, as Discord answers deletes and typing."""
    return web.Response(status=204)


def body_of(request: web.Request) -> Body:
    """The body the middleware parsed for this request."""
    return request[BODY_KEY]


async def parse_body(request: web.Request) -> Body:
    """Parse a JSON or multipart body; multipart keeps ``payload_json`` and every file part."""
    if not request.can_read_body:
        return Body()
    if request.content_type.startswith("multipart/"):
        body = Body()
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            data = await part.read()
            if part.filename is not None:
                content_type = part.headers.get("Content-Type")
                body.files.append(RecordedFile(part.name or "", part.filename, bytes(data), content_type))
            elif part.name == "payload_json":
                body.json = json.loads(data)
        return body
    raw = await request.read()
    return Body(json.loads(raw) if raw else None)
