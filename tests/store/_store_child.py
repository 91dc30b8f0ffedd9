"""Another process on the same store file, for the SQLite multi-process tests.

python _store_child.py lease DB OWNER   open the store, print "ready", wait for a line on
                                        stdin, lease once, print "leased", wait for another
                                        line, then lease and complete small batches until
                                        nothing is due; print the leased ids as JSON
python _store_child.py commit DB        admit 1000 rows, finish 500, lease 100 more,
                                        print "committed", then wait to be killed
"""

from __future__ import annotations

import asyncio
import json
import random
import sys

from shoal.core.model import Completion, FetchResult, NewRequest
from shoal.store import SQLiteStore

T0 = 1_000_000.0


async def lease_until_empty(path: str, owner: str) -> list[int]:
    rng = random.Random(owner)
    leased: list[int] = []
    async with SQLiteStore(path, busy_timeout=30) as store:
        job = await store.ensure_job("shared", mode="fetch", config={})
        # Opened before "go": one process still opening while the others lease could
        # find every row taken (and fail the test's "each process won some rows").
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        first = True
        while True:
            batch = await store.lease(job.id, owner, limit=rng.randint(1, 16), now=T0, ttl=3600)
            if first:
                # Every process holds a lease before any goes on, so all of them take part
                # however the OS schedules them; the rest of the leasing is a free-for-all.
                first = False
                print("leased", flush=True)
                await asyncio.to_thread(sys.stdin.readline)
            if not batch:
                # Nothing leasable: the rest may belong to hosts other processes own.
                if (await store.counts(job.id)).open == 0:
                    return leased
                await asyncio.sleep(0.01)
                continue
            leased.extend(r.id for r in batch)
            results = [FetchResult(request_id=r.id, url=r.url, status=200) for r in batch]
            await store.complete(job.id, owner, Completion(results=results), now=T0)


async def commit_then_hang(path: str) -> None:
    store = SQLiteStore(path)
    await store.open()
    job = await store.ensure_job("killed", mode="fetch", config={})
    requests = [
        NewRequest(url=f"https://a.test/{i}", fingerprint=b"%d" % i, host="a.test")
        for i in range(1000)
    ]
    await store.add_requests(job.id, requests, now=T0)
    done = await store.lease(job.id, "child", limit=500, now=T0, ttl=3600)
    results = [FetchResult(request_id=r.id, url=r.url, status=200) for r in done]
    await store.complete(job.id, "child", Completion(results=results), now=T0)
    await store.lease(job.id, "child", limit=100, now=T0, ttl=3600)
    print("committed", flush=True)
    await asyncio.sleep(60)


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "lease":
        print(json.dumps(asyncio.run(lease_until_empty(path, sys.argv[3]))), flush=True)
    elif mode == "commit":
        asyncio.run(commit_then_hang(path))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
