"""A raw TCP server for the responses a real HTTP server will not send.

aiohttp's server always writes a well-formed status line, legal headers and
correct framing; the zoo also needs the opposite. Each path of this server is
one broken behaviour, written byte by byte onto the socket. Every connection
answers one request and is closed (except ``/cl-short``, which keeps the
connection open the way a buggy keep-alive server would).

=============================  ===============================================
``/reset-mid-body``            headers and part of the body, then a TCP RST
``/reset-at-once``             reads the request, answers with a TCP RST
``/close-at-once``             reads the request, closes without a byte
``/no-response``               reads the request, then says nothing
``/drip-headers``              the status line and headers, one byte per ``drip`` s
``/bad-status-line``           ``HTTP/1.1 OK`` (no status code)
``/not-http``                  an SSH banner instead of an HTTP response
``/malformed-header``          a header line without a colon
``/space-before-colon``        ``Content-Type : text/html``
``/duplicate-headers``         the same headers (Content-Type, Set-Cookie, X-Dup) repeated
``/conflicting-length``        two Content-Length headers that disagree
``/huge-header``               one header of 1 MiB
``/many-headers``              10 000 small headers
``/non-ascii-headers``         Latin-1, UTF-8 and control bytes in header values
``/cl-short``                  Content-Length shorter than the body (connection kept)
``/cl-long``                   Content-Length longer than the body, then close
``/chunked-bad-size``          a chunk size that is not hexadecimal
``/chunked-truncated``         chunks, then close before the last (empty) chunk
``/chunked-and-length``        both Transfer-Encoding: chunked and Content-Length
``/http10-close``              an HTTP/1.0 body delimited by closing the connection
``/ok``                        a small valid page (also every path on a TLS port)
=============================  ===============================================

Anything else is a 404. Waiting behaviours end when the server closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from shoal.testweb._state import MAX_WAIT

__all__ = ["RAW_PATHS", "RawServer"]


_MAX_HEAD = 64 * 1024
_HEAD_TIMEOUT = 30.0
_FLUSH_TIMEOUT = 5.0
_OK_HTML = (
    b"<!doctype html>\n<html><head><title>ok</title></head>"
    b'<body><p>ok</p><a href="/ok?from=raw">again</a></body></html>\n'
)
_PARTIAL_BODY = b"<!doctype html>\n<html><body>" + b"x" * 4000


def _response(status: str, headers: Sequence[bytes], body: bytes = b"") -> bytes:
    return b"\r\n".join([f"HTTP/1.1 {status}".encode(), *headers, b"", body])


def _html_headers(length: int | None, *extra: bytes) -> list[bytes]:
    headers = [b"Content-Type: text/html; charset=utf-8", *extra]
    if length is not None:
        headers.append(b"Content-Length: %d" % length)
    headers.append(b"Connection: close")
    return headers


class _Conn:
    """One accepted connection and the server it belongs to."""

    def __init__(
        self, server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def wait(self, seconds: float) -> bool:
        return await self.server.wait(seconds)

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN (SO_LINGER on, zero timeout)."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def flushed(self) -> None:
        """Wait (bounded) until the kernel has sent and the peer acknowledged every byte, so
        that a reset that follows cuts the body where we meant it to, not earlier."""
        await self.writer.drain()
        sock = self.writer.get_extra_info("socket")
        try:
            import fcntl
            import termios
        except ImportError:  # not POSIX: the reset may come a little early
            return
        if sock is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _FLUSH_TIMEOUT
        buf = bytearray(4)
        while loop.time() < deadline:
            try:
                fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf)  # SIOCOUTQ on Linux
            except OSError:
                return
            if struct.unpack("i", buf)[0] == 0:
                return
            await asyncio.sleep(0.001)


Behaviour = Callable[[_Conn], Awaitable[None]]


async def _reset_mid_body(conn: _Conn) -> None:
    await conn.send(_response("200 OK", _html_headers(100_000), _PARTIAL_BODY))
    await conn.flushed()
    conn.reset()


async def _reset_at_once(conn: _Conn) -> None:
    conn.reset()


async def _close_at_once(conn: _Conn) -> None:
    conn.writer.close()


async def _no_response(conn: _Conn) -> None:
    await conn.wait(MAX_WAIT)


async def _drip_headers(conn: _Conn) -> None:
    head = _response("200 OK", _html_headers(len(_OK_HTML)))
    for byte in head:
        await conn.send(bytes([byte]))
        if not await conn.wait(conn.server.drip):
            return
    await conn.send(_OK_HTML)


async def _bad_status_line(conn: _Conn) -> None:
    await conn.send(b"HTTP/1.1 OK\r\n" + b"\r\n".join(_html_headers(2)) + b"\r\n\r\nok")


async def _not_http(conn: _Conn) -> None:
    await conn.send(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")


async def _malformed_header(conn: _Conn) -> None:
    headers = _html_headers(len(_OK_HTML), b"this line is not a header")
    await conn.send(_response("200 OK", headers, _OK_HTML))


async def _space_before_colon(conn: _Conn) -> None:
    headers = [b"Content-Type : text/html", b"Content-Length: %d" % len(_OK_HTML)]
    await conn.send(_response("200 OK", headers, _OK_HTML))


async def _duplicate_headers(conn: _Conn) -> None:
    headers = _html_headers(
        len(_OK_HTML),
        b"Content-Type: text/html; charset=utf-8",
        b"X-Dup: 1",
        b"X-Dup: 2",
        b"X-Dup: 3",
        b"Set-Cookie: a=1",
        b"Set-Cookie: b=2",
    )
    await conn.send(_response("200 OK", headers, _OK_HTML))


async def _conflicting_length(conn: _Conn) -> None:
    headers = [b"Content-Type: text/html", b"Content-Length: 5", b"Content-Length: 50"]
    await conn.send(_response("200 OK", headers, _OK_HTML))


async def _huge_header(conn: _Conn) -> None:
    headers = _html_headers(len(_OK_HTML), b"X-Huge: " + b"h" * (1 << 20))
    await conn.send(_response("200 OK", headers, _OK_HTML))


async def _many_headers(conn: _Conn) -> None:
    many = [b"X-Many-%d: %d" % (n, n) for n in range(10_000)]
    await conn.send(_response("200 OK", _html_headers(len(_OK_HTML), *many), _OK_HTML))


async def _non_ascii_headers(conn: _Conn) -> None:
    headers = _html_headers(
        len(_OK_HTML),
        b"X-Latin1: caf\xe9",
        "X-Utf8: caf\u00e9 \u2603".encode(),
        b"X-Control: a\x01b\x7fc",
        b"X-High: \xff\xfe\x80",
        b"Link: </caf\xe9>; rel=next",
    )
    await conn.send(_response("200 OK", headers, _OK_HTML))


async def _cl_short(conn: _Conn) -> None:
    # A buggy keep-alive server: the bytes past Content-Length are left on the connection,
    # where a client that reuses it would read them as the start of the next response.
    head = [b"Content-Type: text/html; charset=utf-8", b"Content-Length: 16"]
    await conn.send(_response("200 OK", head, _OK_HTML))


async def _cl_long(conn: _Conn) -> None:
    await conn.send(_response("200 OK", _html_headers(len(_OK_HTML) + 1000), _OK_HTML))


def _chunked_head() -> bytes:
    return _response(
        "200 OK", [b"Content-Type: text/html", b"Transfer-Encoding: chunked", b"Connection: close"]
    )


async def _chunked_bad_size(conn: _Conn) -> None:
    # The headers and a good chunk arrive first, so the failure is in the body, not the head.
    await conn.send(_chunked_head() + b"5\r\nhello\r\n")
    await conn.flushed()
    await conn.send(b"zz\r\nworld\r\n0\r\n\r\n")


async def _chunked_truncated(conn: _Conn) -> None:
    await conn.send(_chunked_head() + b"5\r\nhello\r\n400\r\nonly a little of it")


async def _chunked_and_length(conn: _Conn) -> None:
    head = _response(
        "200 OK",
        [b"Content-Type: text/html", b"Transfer-Encoding: chunked", b"Content-Length: 10"],
    )
    await conn.send(head + b"5\r\nhello\r\n0\r\n\r\n")


async def _http10_close(conn: _Conn) -> None:
    head = b"HTTP/1.0 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    await conn.send(head + _OK_HTML)


async def _ok(conn: _Conn) -> None:
    await conn.send(_response("200 OK", _html_headers(len(_OK_HTML)), _OK_HTML))


async def _not_found(conn: _Conn) -> None:
    body = b"not found\n"
    headers = [b"Content-Type: text/plain", b"Content-Length: %d" % len(body), b"Connection: close"]
    await conn.send(_response("404 Not Found", headers, body))


_BEHAVIOURS: dict[str, Behaviour] = {
    "/reset-mid-body": _reset_mid_body,
    "/reset-at-once": _reset_at_once,
    "/close-at-once": _close_at_once,
    "/no-response": _no_response,
    "/drip-headers": _drip_headers,
    "/bad-status-line": _bad_status_line,
    "/not-http": _not_http,
    "/malformed-header": _malformed_header,
    "/space-before-colon": _space_before_colon,
    "/duplicate-headers": _duplicate_headers,
    "/conflicting-length": _conflicting_length,
    "/huge-header": _huge_header,
    "/many-headers": _many_headers,
    "/non-ascii-headers": _non_ascii_headers,
    "/cl-short": _cl_short,
    "/cl-long": _cl_long,
    "/chunked-bad-size": _chunked_bad_size,
    "/chunked-truncated": _chunked_truncated,
    "/chunked-and-length": _chunked_and_length,
    "/http10-close": _http10_close,
    "/ok": _ok,
}

#: Every path the raw server answers (others are 404).
RAW_PATHS: tuple[str, ...] = tuple(_BEHAVIOURS)


class RawServer:
    """Serve :data:`RAW_PATHS` on ``address``; with ``tls``, every path is ``/ok`` over TLS.

    ``drip`` is the seconds between bytes of ``/drip-headers``. ``requests``
    counts the requests seen per path.
    """

    def __init__(
        self,
        address: str,
        *,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        drip: float = 1.0,
    ) -> None:
        self.address = address
        self.drip = drip
        self.requests: Counter[str] = Counter()
        self._requested_port = port
        self._tls = tls
        self._server: asyncio.Server | None = None
        self._tasks: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._closing = asyncio.Event()
        self.port = 0

    @property
    def base_url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{self.address}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept,
            self.address,
            self._requested_port,
            ssl=self._tls,
            ssl_handshake_timeout=10.0 if self._tls is not None else None,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._closing.set()  # wakes every handler that waits
        server.close()
        for writer in list(self._tasks.values()):
            writer.transport.abort()  # wakes every handler that reads
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=_FLUSH_TIMEOUT)
            for task in stuck:  # pragma: no cover - a handler that ignored both
                task.cancel()
        await server.wait_closed()

    async def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` (capped at ``MAX_WAIT``); False if the server is closing."""
        if self._closing.is_set():
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(seconds, MAX_WAIT)):
                await self._closing.wait()
        return not self._closing.is_set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks[task] = writer
        try:
            await self._serve(_Conn(self, reader, writer))
        except (
            ConnectionError,
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ssl.SSLError,
        ):
            pass  # the client left, or never finished its request: nothing to answer
        finally:
            self._tasks.pop(task, None)
            if self._closing.is_set():
                writer.transport.abort()
            else:
                writer.close()

    async def _serve(self, conn: _Conn) -> None:
        while True:
            async with asyncio.timeout(_HEAD_TIMEOUT):
                head = await conn.reader.readuntil(b"\r\n\r\n")
            if len(head) > _MAX_HEAD:
                return
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = request_line.split(" ")
            path = parts[1].split("?", 1)[0] if len(parts) == 3 else "/"
            self.requests[path] += 1
            behaviour = _ok if self._tls is not None else _BEHAVIOURS.get(path, _not_found)
            await behaviour(conn)
            if behaviour is not _cl_short or conn.writer.is_closing():
                return  # every other behaviour answers one request per connection
