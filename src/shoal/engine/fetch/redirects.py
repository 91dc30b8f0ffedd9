"""Following redirects for a request that carries headers of its own, which stay with
their origin.

aiohttp drops only ``Authorization``, ``Cookie`` and ``Proxy-Authorization``
on a redirect to another origin; an API key in ``X-Api-Key`` would go along.
A request's own headers (a JSON input line's, the API's per-host headers,
Basic auth from URL userinfo) are meant for the origin they were given for,
so here each hop is sent by hand and carries them only when its URL has the
request's origin. Everything else is aiohttp's behaviour, errors included:
303 (and 301/302 after POST) turn into a GET without a body, and a location
that is not an http(s) URL, or a chain too long, raises aiohttp's own
exceptions, which ``classify_exception`` maps as it maps aiohttp's.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from yarl import URL

from shoal.core.model import Request
from shoal.core.urls import split_userinfo

__all__ = ["REDIRECT_STATUSES", "origin_bound_exchange"]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@contextlib.asynccontextmanager
async def origin_bound_exchange(
    session: aiohttp.ClientSession,
    request: Request,
    *,
    max_redirects: int,
    proxy: str | None = None,
) -> AsyncIterator[tuple[aiohttp.ClientResponse, tuple[str, ...]]]:
    """The final response to ``request`` and the URLs that redirected to it."""
    url = URL(request.url, encoded=True)
    origin = url.origin()
    method, body = request.method, request.body
    history: list[aiohttp.ClientResponse] = []
    while True:
        headers = request.headers if url.origin() == origin else ()
        response = await session.request(
            method, url, headers=headers or None, data=body, allow_redirects=False, proxy=proxy
        )
        location = response.headers.get("Location")
        if response.status not in REDIRECT_STATUSES or location is None:
            try:
                yield response, tuple(_bare(str(r.url)) for r in history)
            finally:
                response.release()
            return
        response.release()
        history.append(response)
        if len(history) >= max_redirects:
            raise aiohttp.TooManyRedirects(history[0].request_info, tuple(history))
        if (response.status == 303 and method != "HEAD") or (
            response.status in (301, 302) and method == "POST"
        ):
            method, body = "GET", None
        url = _next_url(url, location)


def _bare(url: str) -> str:
    return split_userinfo(url)[0] if "@" in url else url


def _next_url(url: URL, location: str) -> URL:
    try:
        target = URL(location)
    except ValueError as exc:
        raise aiohttp.InvalidUrlRedirectClientError(
            location, "Server attempted redirecting to a location that does not look like a URL"
        ) from exc
    if target.scheme not in ("http", "https", ""):
        raise aiohttp.NonHttpUrlRedirectClientError(location)
    if not target.is_absolute() or not target.host:
        target = url.join(target)
    try:
        target.origin()
    except ValueError as exc:
        raise aiohttp.InvalidUrlRedirectClientError(target, "Invalid redirect URL origin") from exc
    return target
