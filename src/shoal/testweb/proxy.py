"""A forward HTTP proxy on loopback that counts what passes through it, for tests.

::

    with ForwardProxy.run_in_thread() as proxy:
        proxy.url                      # 'http://127.0.0.1:PORT'
        proxy.passed()                 # [ProxiedRequest(target, method, headers), ...]

It takes absolute-form requests (``GET http://host:port/path HTTP/1.1``),
sends each to its target as origin-form on a new connection with
``Connection: close``, and copies the answer back, one request per client
connection. ``require`` makes it answer 407 unless the request carries that
``Proxy-Authorization`` value. It forwards only to loopback addresses.
CONNECT (tunnels for https) is refused with 405.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import NamedTuple
from urllib.parse import urlsplit

from shoal.testweb._server import StreamServer

__all__ = ["ForwardProxy", "ProxiedRequest"]

_MAX_HEAD = 64 * 1024
_TIMEOUT = 30.0
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "upgrade"}
)


class ProxiedRequest(NamedTuple):
    """A request the proxy received: its absolute target, method and headers."""

    target: str
    method: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


class ForwardProxy(StreamServer):
    """See the module docstring. ``start()``/``close()``, or ``run_in_thread()``."""

    scheme = "http"

    def __init__(self, *, host: str = "127.0.0.1", require: str | None = None) -> None:
        super().__init__(host=host)
        self._require = require
        self._passed: list[ProxiedRequest] = []

    def passed(self) -> list[ProxiedRequest]:
        """What went through, oldest first (a copy)."""
        return list(self._passed)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_TIMEOUT):
                await self._one(reader, writer)
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > _MAX_HEAD:
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = tuple(
            (name.strip(), value.strip())
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        )
        seen = ProxiedRequest(target, method, headers)
        self._passed.append(seen)
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        if self._require is not None and seen.header("Proxy-Authorization") != self._require:
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="testweb"\r\nContent-Length: 0\r\n\r\n'
            )
            return
        parts = urlsplit(target)
        if parts.scheme != "http" or parts.hostname is None:
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        if not ipaddress.ip_address(parts.hostname).is_loopback:
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        length = int(seen.header("Content-Length") or 0)
        body = await reader.readexactly(length) if length else b""
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        upstream_reader, upstream = await asyncio.open_connection(parts.hostname, parts.port or 80)
        try:
            kept = [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP_BY_HOP]
            request = f"{method} {path} {version}\r\n" + "".join(f"{h}\r\n" for h in kept)
            upstream.write((request + "Connection: close\r\n\r\n").encode("latin-1") + body)
            await upstream.drain()
            while chunk := await upstream_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            upstream.close()
