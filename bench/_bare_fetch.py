"""The peer shoal fetch is measured against: a hand-written aiohttp + asyncio worker pool.

What a user writes instead of shoal: N workers pull URLs from a queue, read
every body fully, and keep nothing. No storage, no retries, no politeness.
Usage: python _bare_fetch.py URLS_FILE CONCURRENCY
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp


async def main(urls: list[str], concurrency: int) -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for url in urls:
        queue.put_nowait(url)
    ok = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok
        while True:
            try:
                url = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                async with session.get(url) as response:
                    await response.read()
                    ok += response.status == 200
            except aiohttp.ClientError:
                pass

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    if ok != len(urls):
        print(f"bare loop: only {ok} of {len(urls)} OK", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        url_list = [line.strip() for line in f if line.strip()]
    try:
        import uvloop

        uvloop.run(main(url_list, int(sys.argv[2])))
    except ImportError:
        asyncio.run(main(url_list, int(sys.argv[2])))
