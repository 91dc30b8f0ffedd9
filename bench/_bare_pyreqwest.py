"""A bare pyreqwest worker pool: the same loop as ``_bare_fetch.py`` on reqwest/hyper.

N workers pull URLs from a queue, read every body fully, and keep nothing.
Usage: python _bare_pyreqwest.py URLS_FILE CONCURRENCY
"""

from __future__ import annotations

import asyncio
import sys

from pyreqwest.client import ClientBuilder
from pyreqwest.exceptions import PyreqwestError


async def main(urls: list[str], concurrency: int) -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for url in urls:
        queue.put_nowait(url)
    ok = 0
    client = ClientBuilder().max_connections(concurrency).http1_only().build()

    async def worker() -> None:
        nonlocal ok
        while True:
            try:
                url = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                response = await client.get(url).build().send()
                await response.bytes()
                ok += response.status == 200
            except PyreqwestError:
                pass

    async with client:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    if ok != len(urls):
        print(f"bare pyreqwest loop: only {ok} of {len(urls)} OK", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        url_list = [line.strip() for line in f if line.strip()]
    try:
        import uvloop

        uvloop.run(main(url_list, int(sys.argv[2])))
    except ImportError:
        asyncio.run(main(url_list, int(sys.argv[2])))
