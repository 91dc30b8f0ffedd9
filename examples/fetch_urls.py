"""Fetch a list of URLs with shoal's Python API, streaming results as they arrive.

Runs against a local testweb site it starts itself: ``python examples/fetch_urls.py``.
"""

from __future__ import annotations

import asyncio
import contextlib

import shoal
from shoal.testweb import SiteSpec, TestWeb


async def stream(urls: list[str]) -> int:
    count = 0
    async with contextlib.aclosing(shoal.fetch(urls, per_host=4)) as results:
        async for result in results:
            count += 1
            print(result.status, result.url, f"{result.elapsed_ms or 0:.0f} ms")
    return count


def main() -> None:
    with TestWeb.run_in_thread(SiteSpec(hosts=2, pages=20)) as web:
        urls = [web.url(host, f"/page/{page}") for host in range(2) for page in range(10)]
        streamed = asyncio.run(stream(urls))
        # The same, collected into a list, from plain synchronous code:
        collected = shoal.fetch_all(urls)
    print(f"streamed {streamed} results, collected {len(collected)}")
    if streamed != len(urls) or len(collected) != len(urls):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
