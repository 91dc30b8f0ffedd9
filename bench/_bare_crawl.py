"""The peer shoal crawl is measured against: a hand-written aiohttp + asyncio crawl loop.

What a user writes instead of shoal: uvloop, one session, N workers pulling
URLs from a queue, a ``seen`` set, links found with selectolax's lexbor
parser, resolved with urljoin and kept when on the seed's host. No storage,
no retries, no politeness, no robots.txt. Done when the queue is empty and no
worker is busy. Prints ``pages N`` (responses with status 200).

Usage: python _bare_crawl.py SEED_URL CONCURRENCY
"""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urldefrag, urljoin, urlsplit

import aiohttp
from selectolax.lexbor import LexborHTMLParser


async def crawl(seed: str, concurrency: int) -> tuple[int, int]:
    host = urlsplit(seed).netloc
    queue: asyncio.Queue[str] = asyncio.Queue()
    seen = {seed}
    queue.put_nowait(seed)
    ok = failed = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok, failed
        while True:
            url = await queue.get()
            try:
                async with session.get(url) as response:
                    body = await response.read()
                    if response.status != 200:
                        failed += 1
                        continue
                    ok += 1
                    if "html" not in response.headers.get("Content-Type", ""):
                        continue
                for anchor in LexborHTMLParser(body).css("a[href]"):
                    href = anchor.attributes.get("href")
                    if not href:
                        continue
                    link = urldefrag(urljoin(url, href.strip())).url
                    if link not in seen and urlsplit(link).netloc == host:
                        seen.add(link)
                        queue.put_nowait(link)
            except (aiohttp.ClientError, TimeoutError):
                failed += 1
            finally:
                queue.task_done()

    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        workers = [asyncio.create_task(worker(session)) for _ in range(concurrency)]
        try:
            await queue.join()
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
    return ok, failed


def main() -> int:
    seed, concurrency = sys.argv[1], int(sys.argv[2])
    try:
        import uvloop
    except ImportError:
        ok, failed = asyncio.run(crawl(seed, concurrency))
    else:
        ok, failed = uvloop.run(crawl(seed, concurrency))
    print(f"pages {ok}")
    if failed:
        print(f"bare crawl: {failed} page(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
