"""The aiohttp application: endpoint tables plus the request-recording middleware."""

from __future__ import annotations

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
        token = recorder.begin(host, path, monotonic())
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
