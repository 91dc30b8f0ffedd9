"""Crawl a site with shoal's Python API, following links within the seed's host.

Runs against a local testweb site it starts itself: ``python examples/crawl_site.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import shoal
from shoal.testweb import SiteSpec, TestWeb


async def crawl(seed: str) -> set[str]:
    found: set[str] = set()
    statuses: Counter[int | None] = Counter()
    async with contextlib.aclosing(shoal.crawl([seed], depth=3, per_host=4)) as results:
        async for result in results:
            found.add(result.url)
            statuses[result.status] += 1
    print(f"crawled {len(found)} pages; statuses {dict(statuses)}")
    return found


def main() -> None:
    with TestWeb.run_in_thread(SiteSpec(hosts=2, pages=40)) as web:
        found = asyncio.run(crawl(web.url(0, "/")))
        expected = web.expected_pages(host=0, depth=3, cross_host=False)
    if found != expected:
        raise SystemExit(f"expected {len(expected)} pages, found {len(found)}")


if __name__ == "__main__":
    main()
