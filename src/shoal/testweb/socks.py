"""A SOCKS5 proxy on loopback that counts the connections it made, for tests.

::

    with Socks5Proxy.run_in_thread() as proxy:
        proxy.url                      # 'socks5://127.0.0.1:PORT'
        proxy.connected()              # ['127.0.0.2:8080', ...]: one per tunnel

It speaks RFC 1928 without authentication, ``CONNECT`` only, and connects
only to loopback addresses (a name is resolved by the proxy, as ``rdns``
clients ask).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct

from shoal.testweb._server import StreamServer

__all__ = ["Socks5Proxy"]

_TIMEOUT = 30.0
_SUCCEEDED, _NOT_ALLOWED, _REFUSED, _UNSUPPORTED = 0, 2, 5, 7


class Socks5Proxy(StreamServer):
    """See the module docstring. ``start()``/``close()``, or ``run_in_thread()``."""

    scheme = "socks5"

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        super().__init__(host=host)
        self._connected: list[str] = []
        self._relays: set[asyncio.Task[None]] = set()

    def connected(self) -> list[str]:
        """``host:port`` of every tunnel opened, oldest first (a copy)."""
        return list(self._connected)

    def _closing(self) -> None:
        for task in list(self._relays):
            task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            async with asyncio.timeout(_TIMEOUT):
                upstream = await self._handshake(reader, writer)
            if upstream is not None:
                up_reader, up_writer = upstream
                async with asyncio.timeout(_TIMEOUT), asyncio.TaskGroup() as tasks:
                    tasks.create_task(_pipe(reader, up_writer))
                    tasks.create_task(_pipe(up_reader, writer))
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError, ExceptionGroup):
            pass
        finally:
            self._relays.discard(task)
            writer.close()
            if upstream is not None:
                upstream[1].close()

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        if version != 5 or 0 not in methods:
            writer.write(b"\x05\xff")
            return None
        writer.write(b"\x05\x00")
        version, command, _, kind = await reader.readexactly(4)
        if kind == 1:
            host = socket.inet_ntop(socket.AF_INET, await reader.readexactly(4))
        elif kind == 4:
            host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
        elif kind == 3:
            (length,) = await reader.readexactly(1)
            host = (await reader.readexactly(length)).decode("ascii")
        else:
            writer.write(_reply(_UNSUPPORTED))
            return None
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if version != 5 or command != 1:
            writer.write(_reply(_UNSUPPORTED))
            return None
        address = socket.gethostbyname(host) if kind == 3 else host
        if not ipaddress.ip_address(address).is_loopback:
            writer.write(_reply(_NOT_ALLOWED))
            return None
        try:
            upstream = await asyncio.open_connection(address, port)
        except OSError:
            writer.write(_reply(_REFUSED))
            return None
        self._connected.append(f"{host}:{port}")
        writer.write(_reply(_SUCCEEDED))
        return upstream


def _reply(code: int) -> bytes:
    return bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0])


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    finally:
        with contextlib.suppress(OSError):
            if sink.can_write_eof():
                sink.write_eof()
