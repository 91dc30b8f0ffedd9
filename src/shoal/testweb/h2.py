"""An HTTPS endpoint that speaks HTTP/2 and HTTP/1.1, chosen per connection by ALPN.

Every path answers 200 with a small HTML page that names the protocol the
request came in on, also in an ``X-Protocol`` header (``HTTP/2`` or
``HTTP/1.1``); ``versions`` lists them in order of arrival. The certificate
is the zoo's kind (self-signed for the address, ``_tls``): a client reaches
it with verification off.

Needs ``hypercorn`` (the HTTP/2 server) and ``cryptography`` (the
certificate), both development dependencies of shoal.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from types import TracebackType
from typing import Any, cast

from shoal.testweb._tls import self_signed_context

__all__ = ["Http2Endpoint"]

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Http2Endpoint:
    """``async with Http2Endpoint() as site:`` serves on ``site.url(path)`` until the block ends."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.address = address
        self.port = 0
        self.versions: list[str] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def url(self, path: str = "/") -> str:
        return f"https://{self.address}:{self.port}{path}"

    async def __aenter__(self) -> Http2Endpoint:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        context = await asyncio.to_thread(self_signed_context, self.address)
        context.set_alpn_protocols(["h2", "http/1.1"])

        class _Config(Config):
            @property
            def ssl_enabled(self) -> bool:
                return True

            def create_ssl_context(self) -> ssl.SSLContext:
                return context

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.address, 0))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        config = _Config()
        config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) it now
        config.accesslog = None
        config.errorlog = None
        config.graceful_timeout = 1.0
        ready = asyncio.Event()
        self._task = asyncio.create_task(
            # A plain ASGI callable: hypercorn's typed scopes would add nothing here.
            serve(cast(Any, self._app), config, shutdown_trigger=self._stopped(ready), mode="asgi")
        )
        await ready.wait()
        return self

    def _stopped(self, ready: asyncio.Event) -> Callable[[], Awaitable[None]]:
        async def trigger() -> None:
            ready.set()  # hypercorn awaits the trigger once it listens
            await self._stop.wait()

        return trigger

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _app(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        version = "HTTP/2" if scope.get("http_version") == "2" else "HTTP/1.1"
        self.versions.append(version)
        body = f"<html><body><p>{scope['path']} over {version}</p></body></html>".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"x-protocol", version.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
