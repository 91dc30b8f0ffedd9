"""shoal.testweb: a deterministic synthetic website on loopback, for tests, demos and benchmarks.

::

    from shoal.testweb import SiteSpec, TestWeb

    async with TestWeb(SiteSpec(hosts=4, pages=50)) as web:
        web.base_urls                  # ['http://127.0.0.2:PORT', ..., 'http://127.0.0.5:PORT']
        web.expected_pages(depth=2)    # what a depth-2 crawl of host 0 must fetch
        web.stats().hosts[0].max_in_flight

The link graph is a pure function of the :class:`SiteSpec` (see
:mod:`shoal.testweb.site`); the server only renders it. ``shoal testweb`` and
``python -m shoal.testweb`` run the same server from the command line.

:class:`Zoo` (:mod:`shoal.testweb.zoo`) serves hostile servers beside it: bombs,
resets, broken HTTP, a self-signed TLS port, traps (``shoal testweb --zoo``).
"""

from shoal.testweb._server import TestWeb
from shoal.testweb._state import STATE, SeenRequest, ServerState
from shoal.testweb._stats import HostStats, RequestRecord, TestWebStats
from shoal.testweb.site import (
    PageRef,
    SiteSpec,
    expected_pages,
    index_links,
    is_error_page,
    links_from,
    page_links,
    reachable,
)
from shoal.testweb.zoo import Zoo, ZooOptions

__all__ = [
    "STATE",
    "HostStats",
    "PageRef",
    "RequestRecord",
    "SeenRequest",
    "ServerState",
    "SiteSpec",
    "TestWeb",
    "TestWebStats",
    "Zoo",
    "ZooOptions",
    "expected_pages",
    "index_links",
    "is_error_page",
    "links_from",
    "page_links",
    "reachable",
]
