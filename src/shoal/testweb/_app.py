"""The aiohttp application: endpoint tables plus the request-recording middleware."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from time import monotonic

from aiohttp import web
from aiohttp.typedefs import Handler

from shoal.testweb._endpoints import control_routes, routes
from shoal.testweb._revisions import revision_routes
from shoal.testweb._session import session_routes
from shoal.testweb._state import STATE, ServerState

__all__ = ["CONTROL_PREFIX", "build_app"]

CONTROL_PREFIX = "/_testweb/"


# ``struct tcp_info`` (Linux): milliseconds since data last arrived on the connection.
_LAST_DATA_RECV = struct.Struct("=I")
_LAST_DATA_RECV_AT = 52
_TCP_INFO = getattr(socket, "TCP_INFO", None)
_TICK = 0.004  # the kernel's clock tick, in which TCP_INFO counts (Linux: 1 to 4 ms)


def _arrival(request: web.Request, now: float) -> float:
    """When a request started, as the server's host saw it: when its bytes reached the
    TCP stack, for a request this thread got to later (kept off the CPU on a loaded
    machine), else ``now``. The kernel counts in ticks, so that time is never before
    the arrival and at most two ticks after it."""
    transport = request.transport
    if _TCP_INFO is None or transport is None:
        return now
    try:
        info = transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 104)
        since: int = _LAST_DATA_RECV.unpack_from(info, _LAST_DATA_RECV_AT)[0]
    except (AttributeError, OSError, struct.error):
        return now
    return min(now, now - since / 1000.0 + _TICK)


def build_app(
    state: ServerState, extra_routes: Iterable[web.AbstractRouteDef] = ()
) -> web.Application:
    """One application for every host; handlers tell hosts apart by local address."""
    recorder = state.recorder

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith(CONTROL_PREFIX):
            return await handler(request)
        host = state.host_of(request)
        token = recorder.begin(host, path, _arrival(request, monotonic()))
        status = 0
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            recorder.end(host, token, monotonic(), status)

    async def wake_waiters(app: web.Application) -> None:
        state.begin_close()

    app = web.Application(middlewares=[record])
    app[STATE] = state
    app.add_routes(control_routes)
    app.add_routes(routes)
    app.add_routes(session_routes)
    app.add_routes(revision_routes)
    app.add_routes(extra_routes)
    app.on_shutdown.append(wake_waiters)
    return app
