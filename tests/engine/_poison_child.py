"""A crawl that a URL kills, for the crash-loop guard's test.

python _poison_child.py DB POISON URL...   fetch the URLs into the SQLite store DB (job
                                           "poison"); the process kills itself (SIGKILL)
                                           as it starts fetching POISON, as a URL that
                                           crashes the fetching process would
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from shoal.core.config import CrawlConfig, Limits, RetryPolicy, Timeouts
from shoal.core.inputs import parse_line
from shoal.core.model import Request
from shoal.engine.run.job import JobRun
from shoal.store import SQLiteStore


async def main(path: str, poison: str, urls: list[str]) -> None:
    poisoned = parse_line(poison, 1)
    assert poisoned is not None

    def fetch_or_die(request: Request) -> Request:
        if request.url == poisoned.url:
            os.kill(os.getpid(), signal.SIGKILL)
        return request

    config = CrawlConfig(
        limits=Limits(concurrency=8),
        timeouts=Timeouts(total=10, connect=3, read=5),
        retry=RetryPolicy(retries=1, backoff_base=0.05, backoff_cap=0.2),
    )
    async with SQLiteStore(path) as store:
        job = await store.ensure_job("poison", mode="fetch", config={})
        parsed = [parse_line(url, n) for n, url in enumerate(urls, 1)]
        requests = [p for p in parsed if p is not None]
        await store.add_requests(job.id, requests, now=time.time())
        outcome = await JobRun(store, job, config, before_fetch=fetch_or_die).run()
    if not outcome.completed:
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
