"""What every handler of one running server shares, reachable as ``request.app[STATE]``.

Endpoint modules (the built-in table, and any later "zoo" of hostile
endpoints) are plain aiohttp handlers that read this object; they never
hold state of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

from aiohttp import web

from shoal.testweb import _render
from shoal.testweb._stats import TrafficRecorder
from shoal.testweb.site import PageRef, SiteSpec, is_error_page

__all__ = ["MAX_WAIT", "STATE", "SeenRequest", "ServerState"]

#: No handler waits longer than this many seconds, whatever it was asked.
MAX_WAIT = 300.0
#: Requests kept in ``ServerState.seen``: the oldest are dropped past this many.
MAX_SEEN = 100_000


class SeenRequest(NamedTuple):
    """A request as an endpoint that records headers received it."""

    host: int
    path: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


class ServerState:
    """Spec, addresses, request log, per-host counters and page cache of one server."""

    def __init__(
        self,
        spec: SiteSpec,
        addresses: Sequence[str],
        base_urls: Sequence[str],
        *,
        keep_log: bool = True,
    ) -> None:
        self.spec = spec
        self.addresses = list(addresses)
        self.base_urls = list(base_urls)
        self.recorder = TrafficRecorder(self.addresses, keep_log=keep_log)
        #: Requests seen per (host, key) by stateful endpoints such as /flaky.
        self.counters: dict[tuple[int, str], int] = {}
        #: Requests with their headers, from the endpoints that record them (``_session``).
        self.seen: deque[SeenRequest] = deque(maxlen=MAX_SEEN)
        #: The site's revision: what the ``/rev/`` pages are now (``_revisions``).
        self.revision = 0
        self._host_by_address = {address: index for index, address in enumerate(addresses)}
        self._closing = asyncio.Event()
        self.page_body = functools.lru_cache(maxsize=16384)(self._page_body)
        self.sitemap_body = functools.lru_cache(maxsize=1024)(self._sitemap_body)

    def host_of(self, request: web.BaseRequest) -> int:
        """The index of the host (local address) the request came in on."""
        transport = request.transport
        if transport is not None:
            sockname = transport.get_extra_info("sockname")
            if sockname:
                index = self._host_by_address.get(sockname[0])
                if index is not None:
                    return index
        # The connection is already gone; the Host header is the best remaining guess.
        return self._host_by_address.get(request.url.host or "", 0)

    def reset(self) -> None:
        """Forget recorded requests and every stateful counter."""
        self.recorder.reset()
        self.counters.clear()
        self.seen.clear()

    def see(self, request: SeenRequest) -> None:
        self.seen.append(request)

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def begin_close(self) -> None:
        """Wake every waiting handler so the server can shut down at once."""
        self._closing.set()

    async def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` (capped at :data:`MAX_WAIT`); False if the server closed."""
        if self._closing.is_set():
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(seconds, MAX_WAIT)):
                await self._closing.wait()
        return not self._closing.is_set()

    def is_error_page(self, host: int, page: int) -> bool:
        return is_error_page(self.spec, host, page)

    def _page_body(self, host: int, page: int | None) -> bytes:
        return _render.page_html(self.spec, self.base_urls, PageRef(host, page))

    def _sitemap_body(self, host: int, kind: str) -> bytes:
        base_url = self.base_urls[host]
        if kind == "index":
            return _render.sitemap_index_xml(base_url)
        if kind == "gz":
            return _render.sitemap_gz(self.spec, base_url, host)
        return _render.sitemap_xml(self.spec, base_url, host)


STATE = web.AppKey("shoal.testweb.state", ServerState)
