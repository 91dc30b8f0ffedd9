"""Pages that change between runs, with validators: what a recrawl is tested against.

The site has a revision (``ServerState.revision``, 0 at start), which a test
moves with ``TestWeb.set_revision``. Every page sends an ``ETag`` and a
``Last-Modified`` naming its own version, answers 304 to a conditional
request that names that version (``If-None-Match``, else
``If-Modified-Since``), and records the request in ``ServerState.seen``.
Conditional requests and 304s are counted per host (``TestWeb.revisions``).

=====================  =========================================================
``/rev/0``             links to ``/rev/1`` ... ``/rev/5``; from revision 1 also to
                       ``/rev/6``, and to ``/rev/0`` of the next host (another
                       host, out of a crawl's host scope) when there are several
``/rev/{n}`` even      changes with every revision (its version is the revision)
``/rev/{n}`` odd       never changes (version 0)
``/rev/5``             410 Gone from revision 1
``/rev/6``, ``/rev/7``  exist from revision 1 (404 before); 6 links to 7
=====================  =========================================================
"""

from __future__ import annotations

import html
from email.utils import formatdate, parsedate_to_datetime
from typing import NamedTuple

from aiohttp import web

from shoal.testweb._state import STATE, SeenRequest, ServerState

__all__ = [
    "CONDITIONAL",
    "NOT_MODIFIED",
    "REV_PAGES",
    "RevisionCounts",
    "revision_counts",
    "revision_routes",
]

revision_routes = web.RouteTableDef()

REV_PAGES = 8
"""Pages ``/rev/0`` ... ``/rev/7`` (not all of them at every revision)."""
CONDITIONAL = "rev:conditional"
"""``ServerState.counters`` key (with the host): conditional requests received."""
NOT_MODIFIED = "rev:304"
"""``ServerState.counters`` key (with the host): 304 answers served."""

_GONE_PAGE = 5
_NEW_PAGES = (6, 7)
_EPOCH = 1_700_000_000  # Last-Modified of version 0; each version is a day later


class RevisionCounts(NamedTuple):
    """What the ``/rev/`` pages answered since start or the last reset, all hosts."""

    conditional: int
    """Requests with ``If-None-Match`` or ``If-Modified-Since``."""
    not_modified: int
    """304 answers."""


def revision_counts(state: ServerState) -> RevisionCounts:
    counters = state.counters
    return RevisionCounts(
        conditional=sum(n for (_, key), n in counters.items() if key == CONDITIONAL),
        not_modified=sum(n for (_, key), n in counters.items() if key == NOT_MODIFIED),
    )


def _version(state: ServerState, n: int) -> int:
    return state.revision if n % 2 == 0 else 0


def _links(state: ServerState, host: int, n: int) -> list[str]:
    revision = state.revision
    if n == 0:
        links = [f"/rev/{k}" for k in range(1, _GONE_PAGE + 1)]
        if revision >= 1:
            links.append(f"/rev/{_NEW_PAGES[0]}")
            if len(state.base_urls) > 1:
                links.append(state.base_urls[(host + 1) % len(state.base_urls)] + "/rev/0")
        return links
    if n == _NEW_PAGES[0]:
        return [f"/rev/{_NEW_PAGES[1]}"]
    return ["/rev/0"]


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison against each listed tag, or ``*``."""
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _not_modified_since(if_modified_since: str, modified: int) -> bool:
    try:
        since = parsedate_to_datetime(if_modified_since).timestamp()
    except (TypeError, ValueError):
        return False  # an invalid date is ignored (RFC 9110 §13.1.3)
    return modified <= since


@revision_routes.get(r"/rev/{n:\d+}")
async def revision_page(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    host = state.host_of(request)
    state.see(SeenRequest(host, request.path_qs, tuple(request.headers.items())))
    if_none_match = request.headers.get("If-None-Match")
    if_modified_since = request.headers.get("If-Modified-Since")
    if if_none_match is not None or if_modified_since is not None:
        state.counters[(host, CONDITIONAL)] = state.counters.get((host, CONDITIONAL), 0) + 1
    n = int(request.match_info["n"])
    revision = state.revision
    if n >= REV_PAGES or (n in _NEW_PAGES and revision < 1):
        raise web.HTTPNotFound()
    if n == _GONE_PAGE and revision >= 1:
        raise web.HTTPGone()
    version = _version(state, n)
    etag = f'"p{n}-v{version}"'
    modified = _EPOCH + version * 86_400
    validators = {"ETag": etag, "Last-Modified": formatdate(modified, usegmt=True)}
    if if_none_match is not None or if_modified_since is not None:
        if (
            _matches(if_none_match, etag)
            if if_none_match is not None
            else _not_modified_since(if_modified_since or "", modified)
        ):
            state.counters[(host, NOT_MODIFIED)] = state.counters.get((host, NOT_MODIFIED), 0) + 1
            return web.Response(status=304, headers=validators)
    anchors = "".join(
        f'<a href="{html.escape(link)}">{html.escape(link)}</a>\n'
        for link in _links(state, host, n)
    )
    body = f"<!doctype html><title>page {n} version {version}</title>\n{anchors}"
    return web.Response(
        body=body.encode(), content_type="text/html", charset="utf-8", headers=validators
    )
