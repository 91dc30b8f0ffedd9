"""Crawl with ``shoal.Crawler``: extraction rules, an ``on_page`` hook, headers per host.

Runs against a local testweb site it starts itself: ``python examples/crawl_with_hooks.py``.
Every page's title and links are extracted off the event loop; ``on_page`` sees each
result as it is recorded; the site's first host is sent an ``Authorization`` header.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import shoal
from shoal.testweb import SiteSpec, TestWeb

RULES = {
    "title": "css:title::text",  # the first match, or null
    "links": "css:a::attr(href)[]",  # [] collects every match
    "page_no": r"re:page (\d+)",  # group 1 of the first match
}


async def crawl(seed: str, store: str) -> dict[str, object]:
    titles: dict[str, object] = {}

    async def on_page(page: shoal.FetchResult) -> None:
        # Called with every result, one at a time, while the crawler keeps fetching.
        if page.fields is not None:
            titles[page.url] = page.fields["title"]

    host = urlsplit(seed).hostname or ""
    async with shoal.Crawler(
        store=store,
        extract=RULES,
        on_page=on_page,
        headers={host: {"Authorization": "Bearer example-token"}},  # sent, never stored
        per_host=4,
    ) as crawler:
        summary = await crawler.crawl([seed], depth=2)
    print(f"crawled {summary.counts.done} pages ({summary.counts.failed} failed) into {store}")
    for url, title in sorted(titles.items())[:5]:
        print(f"  {title!r:28} {url}")
    return titles


def main() -> None:
    with (
        TestWeb.run_in_thread(SiteSpec(hosts=2, pages=30)) as web,
        tempfile.TemporaryDirectory() as tmp,
    ):
        titles = asyncio.run(crawl(web.url(0, "/"), str(Path(tmp) / "crawl.db")))
        expected = web.expected_pages(host=0, depth=2, cross_host=False)
    if set(titles) != expected or not all(isinstance(t, str) for t in titles.values()):
        raise SystemExit(f"expected titles of {len(expected)} pages, got {len(titles)}")


if __name__ == "__main__":
    main()
