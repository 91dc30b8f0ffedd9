"""The endpoint table every host serves, as aiohttp route definitions.

Each handler is a plain ``async def handler(request)`` that finds the server's
shared state at ``request.app[STATE]``. Another module can define its own
``web.RouteTableDef`` the same way (a "zoo" of hostile endpoints, say) and
pass it to ``TestWeb(extra_routes=...)``.

=========================  ===================================================
``/``                      index page linking to ``/page/0`` and a few others
``/page/{n}``              graph page (500 for ``error_rate`` pages, 404 past end)
``/static/{n}``            tiny fixed page without links, as cheap as possible
``/status/{code}``         that status, tiny body
``/flaky/{key}``           ``?fail=N&code=503&retry_after=S|date:S``: N failures, then 200
``/delay/{ms}``            200 after ``ms`` milliseconds
``/stall``                 ``?phase=headers``: nothing; ``?phase=body&after=N``: N bytes
``/redirect/{n}``          302 chain of n hops ending at ``/page/0``
``/redirect-loop``         302 to itself
``/redirect-endless/{n}``  302 to ``/redirect-endless/{n+1}``, forever
``/redirect-to``           ``?url=X&status=302``: redirect to X
``/bytes/{n}``             n bytes, streamed; ``?chunked=1`` without Content-Length
``/robots.txt``            ``spec.robots`` or 404; a ``spec.robots_faults`` fault
``/sitemap.xml``           urlset of every page of the host
``/sitemap_index.xml``     sitemapindex pointing at ``/sitemap-1.xml.gz``
``/sitemap-1.xml.gz``      the gzipped urlset
``/sitemap-nest/{p}.xml``  a sitemapindex of ``?fanout=N`` (10) more, ``{p}-{k}.xml``, forever
=========================  ===================================================

Control endpoints (``/_testweb/...``) are in :data:`control_routes` and are
never recorded.
"""

from __future__ import annotations

import json
import time
from email.utils import formatdate
from html import escape

from aiohttp import web

from shoal.testweb import _render
from shoal.testweb._state import MAX_WAIT, STATE, ServerState

__all__ = ["control_routes", "routes"]

routes = web.RouteTableDef()
control_routes = web.RouteTableDef()

_HTML = {"Content-Type": "text/html; charset=utf-8"}
_TEXT = {"Content-Type": "text/plain; charset=utf-8"}
_XML = {"Content-Type": "application/xml; charset=utf-8"}
_BYTES_CHUNK = bytes(range(256)) * 256  # 64 KiB of a recognisable pattern
_STALL_PENDING = 1024  # bytes promised in Content-Length but never sent
_NO_BODY_STATUSES = frozenset({204, 304})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RETRY_AFTER_STATUSES = frozenset({429, 503})


def _html(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, headers=_HTML)


def _text(text: str, status: int = 200) -> web.Response:
    return web.Response(body=text.encode(), status=status, headers=_TEXT)


def _redirect(location: str, status: int = 302) -> web.Response:
    return web.Response(status=status, headers={"Location": location, **_TEXT})


def _closing() -> web.Response:
    return _text("server closing\n", 503)


def _int_query(
    request: web.Request, name: str, default: int, *, low: int = 0, high: int | None = None
) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer, got {raw!r}\n") from None
    if value < low or (high is not None and value > high):
        raise web.HTTPBadRequest(text=f"{name} must be in [{low}, {high}], got {value}\n")
    return value


def _abort(request: web.Request) -> None:
    """Drop the connection without finishing the response."""
    if request.transport is not None:
        request.transport.close()


async def _page_latency(state: ServerState) -> bool:
    latency = state.spec.latency_ms
    return latency <= 0 or await state.wait(latency / 1000)


@routes.get("/")
async def index(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if not await _page_latency(state):
        return _closing()
    return _html(state.page_body(state.host_of(request), None))


@routes.get(r"/page/{n:\d+}")
async def page(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    n = int(request.match_info["n"])
    if n >= state.spec.pages:
        raise web.HTTPNotFound()
    if not await _page_latency(state):
        return _closing()
    host = state.host_of(request)
    if state.is_error_page(host, n):
        return _html(_render.ERROR_HTML, 500)
    return _html(state.page_body(host, n))


@routes.get(r"/static/{n}")
async def static(request: web.Request) -> web.StreamResponse:
    return web.Response(body=_render.STATIC_HTML, headers=_HTML)


@routes.get(r"/status/{code:\d+}")
async def status(request: web.Request) -> web.StreamResponse:
    code = int(request.match_info["code"])
    if not 200 <= code <= 599:
        raise web.HTTPBadRequest(text=f"status must be in [200, 599], got {code}\n")
    if code in _NO_BODY_STATUSES:
        return web.Response(status=code)
    return _text(f"status {code}\n", code)


@routes.get("/flaky/{key}")
async def flaky(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    fail = _int_query(request, "fail", 1)
    code = _int_query(request, "code", 503, low=400, high=599)
    retry_after = request.query.get("retry_after")
    headers = dict(_TEXT)
    if retry_after is not None and code in _RETRY_AFTER_STATUSES:
        headers["Retry-After"] = _retry_after_value(retry_after)
    counter = (state.host_of(request), request.match_info["key"])
    seen = state.counters.get(counter, 0) + 1
    state.counters[counter] = seen
    if seen <= fail:
        return web.Response(
            body=f"failure {seen} of {fail}\n".encode(), status=code, headers=headers
        )
    return _text(f"ok after {fail} failure(s)\n")


def _retry_after_value(raw: str) -> str:
    """``S`` → ``S`` (delay-seconds); ``date:S`` → the HTTP-date S seconds from now."""
    as_date = raw.startswith("date:")
    seconds = raw.removeprefix("date:")
    try:
        delay = float(seconds) if as_date else int(seconds)
    except ValueError:
        raise web.HTTPBadRequest(text=f"bad retry_after {raw!r}\n") from None
    if delay < 0:
        raise web.HTTPBadRequest(text=f"retry_after must be ≥ 0, got {raw!r}\n")
    return formatdate(time.time() + delay, usegmt=True) if as_date else str(delay)


@routes.get(r"/delay/{ms:\d+}")
async def delay(request: web.Request) -> web.StreamResponse:
    ms = int(request.match_info["ms"])
    if not await request.app[STATE].wait(ms / 1000):
        return _closing()
    return _text(f"delayed {ms} ms\n")


@routes.get("/stall")
async def stall(request: web.Request) -> web.StreamResponse:
    """Hang (for at most ``MAX_WAIT`` s, or until the server closes), then drop the connection."""
    state = request.app[STATE]
    phase = request.query.get("phase", "headers")
    if phase == "headers":
        await state.wait(MAX_WAIT)
        _abort(request)
        return _closing()
    if phase != "body":
        raise web.HTTPBadRequest(text=f"phase must be 'headers' or 'body', got {phase!r}\n")
    after = _int_query(request, "after", 0, high=len(_BYTES_CHUNK))
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = after + _STALL_PENDING
    await response.prepare(request)
    if after:
        await response.write(_BYTES_CHUNK[:after])
    await state.wait(MAX_WAIT)
    _abort(request)
    return response


@routes.get(r"/redirect/{n:\d+}")
async def redirect(request: web.Request) -> web.StreamResponse:
    n = int(request.match_info["n"])
    return _redirect(f"/redirect/{n - 1}" if n > 0 else "/page/0")


@routes.get(r"/redirect-endless/{n:\d+}")
async def redirect_endless(request: web.Request) -> web.StreamResponse:
    return _redirect(f"/redirect-endless/{int(request.match_info['n']) + 1}")


@routes.get("/redirect-loop")
async def redirect_loop(request: web.Request) -> web.StreamResponse:
    return _redirect("/redirect-loop")


@routes.get("/redirect-to")
async def redirect_to(request: web.Request) -> web.StreamResponse:
    url = request.query.get("url")
    if not url:
        raise web.HTTPBadRequest(text="url is required\n")
    code = _int_query(request, "status", 302, low=300, high=399)
    if code not in _REDIRECT_STATUSES:
        raise web.HTTPBadRequest(text=f"status must be one of {sorted(_REDIRECT_STATUSES)}\n")
    return _redirect(url, code)


@routes.get(r"/bytes/{n:\d+}")
async def bytes_(request: web.Request) -> web.StreamResponse:
    """``n`` bytes of a repeating pattern, written 64 KiB at a time."""
    state = request.app[STATE]
    n = int(request.match_info["n"])
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    if request.query.get("chunked", "0") not in ("", "0", "false"):
        response.enable_chunked_encoding()
    else:
        response.content_length = n
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    chunk = memoryview(_BYTES_CHUNK)
    remaining = n
    try:
        while remaining > 0 and not state.closing:
            size = min(remaining, len(chunk))
            await response.write(chunk[:size])
            remaining -= size
    except ConnectionResetError:
        return response  # the client left; nothing more to do
    if remaining:
        _abort(request)
    else:
        await response.write_eof()
    return response


@routes.get("/robots.txt")
async def robots(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    fault = dict(state.spec.robots_faults).get(state.host_of(request))
    if fault == "500":
        return _text("robots.txt is broken\n", status=500)
    if fault is not None:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.content_length = 1 << 20
        await response.prepare(request)
        # "stall": silence until the server closes; "drip": a byte a second meanwhile.
        try:
            while not state.closing:
                if fault == "drip":
                    await response.write(b"#")
                if not await state.wait(1.0 if fault == "drip" else MAX_WAIT):
                    break
        except ConnectionResetError:
            return response  # the client gave up
        _abort(request)
        return response
    body = state.spec.robots
    if body is None:
        raise web.HTTPNotFound()
    return _text(body)


@routes.get("/sitemap.xml")
async def sitemap(request: web.Request) -> web.StreamResponse:
    return _sitemap(request, "urlset", _XML)


@routes.get(r"/sitemap-nest/{path:[0-9-]+}.xml")
async def sitemap_nest(request: web.Request) -> web.StreamResponse:
    path = request.match_info["path"]
    fanout = _int_query(request, "fanout", 10, high=1000)
    query = f"?fanout={fanout}" if "fanout" in request.query else ""
    base = f"{request.scheme}://{request.host}/sitemap-nest/{path}"
    entries = "".join(
        f"<sitemap><loc>{base}-{k}.xml{escape(query)}</loc></sitemap>" for k in range(fanout)
    )
    body = f'<?xml version="1.0"?>\n<sitemapindex>{entries}</sitemapindex>\n'
    return web.Response(body=body.encode(), headers=_XML)


@routes.get("/sitemap_index.xml")
async def sitemap_index(request: web.Request) -> web.StreamResponse:
    return _sitemap(request, "index", _XML)


@routes.get("/sitemap-1.xml.gz")
async def sitemap_gz(request: web.Request) -> web.StreamResponse:
    return _sitemap(request, "gz", {"Content-Type": "application/gzip"})


def _sitemap(request: web.Request, kind: str, headers: dict[str, str]) -> web.Response:
    state = request.app[STATE]
    if not state.spec.sitemaps:
        raise web.HTTPNotFound()
    return web.Response(body=state.sitemap_body(state.host_of(request), kind), headers=headers)


@control_routes.get("/_testweb/stats")
async def control_stats(request: web.Request) -> web.StreamResponse:
    """The stats as JSON; per-request logs only with ``?log=1``."""
    stats = request.app[STATE].recorder.snapshot()
    with_log = request.query.get("log", "0") not in ("", "0", "false")
    return web.json_response(stats.to_json(log=with_log), dumps=json.dumps)


@control_routes.post("/_testweb/reset")
async def control_reset(request: web.Request) -> web.StreamResponse:
    request.app[STATE].reset()
    return web.json_response({"reset": True})


@control_routes.get("/_testweb/info")
async def control_info(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    return web.json_response(
        {
            "base_urls": state.base_urls,
            "addresses": state.addresses,
            "host": state.host_of(request),
        }
    )
