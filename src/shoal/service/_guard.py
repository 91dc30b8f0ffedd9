"""ASGI middleware: the bearer token, and the request body limit.

Plain ASGI callables wrapping the next app, as starlette's own middleware are.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "BodyTooLarge", "TokenGuard"]

OPEN_PATHS = frozenset({"/healthz", "/"})
"""Routes anyone may reach: the health check, and the dashboard page (which asks for the
token itself) with its static files (``OPEN_PREFIX``)."""
OPEN_PREFIX = "/static/"
WS_PROTOCOL = "shoal"
"""The WebSocket subprotocol a browser asks for; it offers its token as a second one,
``bearer.BASE64URL`` (browsers cannot set headers on a WebSocket, and a token must never
be in a URL)."""


class TokenGuard:
    """Every route but ``OPEN_PATHS`` needs ``Authorization: Bearer TOKEN``. The check is
    constant-time; a refusal is a bare 401 (HTTP) or a close before accepting (WebSocket),
    saying nothing more."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] not in ("http", "websocket")
            or path in OPEN_PATHS
            or (scope["type"] == "http" and path.startswith(OPEN_PREFIX))
        ):
            await self._app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
            if name == b"sec-websocket-protocol" and scope["type"] == "websocket":
                given = _bearer_protocol(value)
        if hmac.compare_digest(given, self._expected):
            await self._app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"detail": "unauthorized"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(HTTPException):
    """A request body went past the limit while it was being read (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit:,} bytes")


class BodyLimit:
    """Refuses a request body over ``limit`` bytes: at once (413) when its Content-Length
    says so, else when the bytes read pass it (the route sees ``BodyTooLarge``)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self._limit
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    await _too_large(send, limit)
                    return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self._app(scope, counted, send)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body over {limit:,} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _bearer_protocol(header: bytes) -> bytes:
    """``Bearer TOKEN`` from a ``Sec-WebSocket-Protocol`` offer ``shoal, bearer.B64URL``."""
    for offer in header.split(b","):
        offer = offer.strip()
        if offer.startswith(b"bearer."):
            encoded = offer[len(b"bearer.") :]
            try:
                token = base64.urlsafe_b64decode(encoded + b"=" * (-len(encoded) % 4))
            except (binascii.Error, ValueError):
                return b""
            return b"Bearer " + token
    return b""
