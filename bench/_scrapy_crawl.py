"""The Scrapy contender of bench/crawl.py: a CrawlSpider following every link on the host.

No item pipeline and no items: the spider counts pages with status 200 and
prints ``pages N`` when it closes, for the harness to check.

Usage: python _scrapy_crawl.py SEED_URL CONCURRENCY [CONCURRENT_ITEMS]

CONCURRENT_ITEMS (Scrapy's default: 100) is also how many asyncio tasks Scrapy
starts to process the output of each callback, links included; the harness
runs a second, tuned Scrapy with a small value.
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import urlsplit

from scrapy.crawler import CrawlerProcess
from scrapy.linkextractors import LinkExtractor
from scrapy.spiders import CrawlSpider, Rule


class SiteSpider(CrawlSpider):
    name = "bench"
    rules = (Rule(LinkExtractor(), callback="count_page", follow=True),)

    def __init__(self, seed: str, *args: Any, **kwargs: Any) -> None:
        self.start_urls = [seed]
        self.allowed_domains = [urlsplit(seed).hostname or ""]
        self.pages = 0
        self.other = 0
        super().__init__(*args, **kwargs)

    def parse_start_url(self, response: Any) -> list[Any]:
        self.count_page(response)
        return []

    def count_page(self, response: Any) -> None:
        if response.status == 200:
            self.pages += 1
        else:
            self.other += 1

    def closed(self, reason: str) -> None:
        print(f"pages {self.pages}", flush=True)
        if self.other or reason != "finished":
            print(f"scrapy: {self.other} non-200 page(s), closed: {reason}", file=sys.stderr)


def settings(concurrency: int, concurrent_items: int | None = None) -> dict[str, Any]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        loop = None
    else:
        loop = "uvloop.Loop"
    tuned = {} if concurrent_items is None else {"CONCURRENT_ITEMS": concurrent_items}
    return {
        **tuned,
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "ROBOTSTXT_OBEY": False,
        "LOG_LEVEL": "ERROR",
        "DOWNLOAD_DELAY": 0,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "RETRY_ENABLED": False,
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        "ASYNCIO_EVENT_LOOP": loop,
        "ITEM_PIPELINES": {},
    }


def main() -> int:
    seed, concurrency = sys.argv[1], int(sys.argv[2])
    concurrent_items = int(sys.argv[3]) if len(sys.argv) > 3 else None
    process = CrawlerProcess(settings(concurrency, concurrent_items))
    process.crawl(SiteSpider, seed=seed)
    process.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
