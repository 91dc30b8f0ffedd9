"""WebSocket frames written straight to a client's transport.

The event hub sends the same few messages to every client. Through ASGI, each message
to each client is a ``send`` call through starlette and uvicorn, a frame built by
websockets and a write: work repeated per client for identical bytes. Here a message is
framed once (:func:`text_frame`; a server's frames are not masked) and the bytes are
written to each client's transport, several messages in one write.

uvicorn's sans-I/O WebSocket protocol is extended by one ASGI scope extension,
``shoal.frames``: a :class:`TransportSink` for the connection. An application served
without it (another server, an in-process test client) sends through ASGI as usual.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

__all__ = ["FRAMES_EXTENSION", "FramesProtocol", "TransportSink", "sink_of", "text_frame"]

FRAMES_EXTENSION = "shoal.frames"


def text_frame(text: str) -> bytes:
    """``text`` as one final, unmasked WebSocket text frame (RFC 6455 §5.2)."""
    data = text.encode()
    size = len(data)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 127, size)
    return head + data


class TransportSink:
    """Writes whole frames to one open connection's transport, bypassing ASGI."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    @property
    def writable(self) -> bool:
        """False while the transport's buffer is over its high-water mark."""
        return self._protocol.writable.is_set()

    async def wait_writable(self) -> None:
        await self._protocol.writable.wait()

    def write(self, frames: bytes) -> bool:
        """Write ``frames`` (whole frames only) unless the connection is closing; a
        transport write takes all of it at once, so a ping or close frame the protocol
        writes itself never lands inside one of these."""
        protocol = self._protocol
        if (
            protocol.close_sent
            or protocol.disconnected
            or protocol.conn.state is not State.OPEN
            or protocol.transport.is_closing()
        ):
            return False
        protocol.transport.write(frames)
        return True


class FramesProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, with a :class:`TransportSink` in each connection's
    scope (``extensions["shoal.frames"]``)."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The application's task was created but has not run yet: it sees the sink.
        scope: Any = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][FRAMES_EXTENSION] = TransportSink(self)


def sink_of(scope: Mapping[str, Any]) -> TransportSink | None:
    """The connection's sink, when the server offers one."""
    sink = (scope.get("extensions") or {}).get(FRAMES_EXTENSION)
    return sink if isinstance(sink, TransportSink) else None
