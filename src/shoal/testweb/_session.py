"""Endpoints for what a client adds to its requests: headers, credentials, cookies.

Each of these records the request it received (host, path and query, every
header) in ``ServerState.seen``, so a test asserts at the server what a
client sent: which headers reached which host, which cookies came back.

=========================  ===================================================
``/echo/{name}``           200; ``?to=URL`` (repeatable) rendered as links
``/private/{name}``        401 without an ``Authorization`` header, else as echo
``/login``                 sets cookie ``session``; links to ``/members/0``
``/members/{n}``           403 without the ``session`` cookie; links to n+1 (< 3)
``/cookie-flood``          ``?n=N&big=B``: sets N cookies ``c0``...(value ``v``) and
                           ``big`` of B bytes (0: none); links to ``/echo/after-flood``
=========================  ===================================================
"""

from __future__ import annotations

import html

from aiohttp import web

from shoal.testweb._state import STATE, SeenRequest

__all__ = ["SESSION_COOKIE", "session_routes"]

session_routes = web.RouteTableDef()

SESSION_COOKIE = "session"
_SESSION_VALUE = "s3cr3t-session"
_MEMBER_PAGES = 3
_HTML = {"Content-Type": "text/html; charset=utf-8"}


def _seen(request: web.Request) -> None:
    state = request.app[STATE]
    state.see(SeenRequest(state.host_of(request), request.path_qs, tuple(request.headers.items())))


def _page(title: str, links: list[str], status: int = 200) -> web.Response:
    anchors = "".join(f'<a href="{html.escape(link)}">{html.escape(link)}</a>\n' for link in links)
    body = f"<!doctype html><title>{html.escape(title)}</title>\n{anchors}"
    return web.Response(body=body.encode(), status=status, headers=_HTML)


@session_routes.get("/echo/{name}")
async def echo(request: web.Request) -> web.StreamResponse:
    _seen(request)
    return _page(request.match_info["name"], request.query.getall("to", []))


@session_routes.get("/private/{name}")
async def private(request: web.Request) -> web.StreamResponse:
    _seen(request)
    if "Authorization" not in request.headers:
        return web.Response(
            status=401, text="authorization required\n", headers={"WWW-Authenticate": "Basic"}
        )
    return _page(request.match_info["name"], request.query.getall("to", []))


@session_routes.get("/login")
async def login(request: web.Request) -> web.StreamResponse:
    _seen(request)
    response = _page("login", ["/members/0"])
    response.set_cookie(SESSION_COOKIE, _SESSION_VALUE, path="/", httponly=True)
    return response


_MAX_FLOOD = 1000
_MAX_BIG = 65_536


@session_routes.get("/cookie-flood")
async def cookie_flood(request: web.Request) -> web.StreamResponse:
    _seen(request)
    n_text, big_text = request.query.get("n", "60"), request.query.get("big", "0")
    if not (n_text.isdigit() and big_text.isdigit()):
        raise web.HTTPBadRequest(text="n and big are whole numbers\n")
    n, big = min(int(n_text), _MAX_FLOOD), min(int(big_text), _MAX_BIG)
    response = _page("cookie flood", ["/echo/after-flood"])
    for k in range(n):
        response.set_cookie(f"c{k}", "v", path="/")
    if big:
        response.set_cookie("big", "x" * big, path="/")
    return response


@session_routes.get(r"/members/{n:\d+}")
async def members(request: web.Request) -> web.StreamResponse:
    _seen(request)
    if request.cookies.get(SESSION_COOKIE) != _SESSION_VALUE:
        return _page("forbidden", ["/login"], status=403)
    n = int(request.match_info["n"])
    return _page(f"member page {n}", [f"/members/{n + 1}"] if n + 1 < _MEMBER_PAGES else [])
