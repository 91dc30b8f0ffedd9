"""How many rows per second one PostgreSQL sustains through shoal's store, no HTTP at all.

    .venv/bin/python bench/pg_store.py [--rows 100000] [--workers 4] [--batch 200]

Admits ``rows`` requests over 1,000 hosts, then ``workers`` store clients (each its own
pool, in one process, as a fleet's workers would be) lease ``batch`` rows and complete
them with a small result until the job is done. Prints admissions/s and leased+completed
rows/s. PostgreSQL from SHOAL_BENCH_PG_DSN or a throwaway cluster (fsync on).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from shoal.core.model import Completion, FetchResult, NewRequest  # noqa: E402
from shoal.store import PostgresStore  # noqa: E402
from shoal.testweb.pgcluster import ThrowawayPostgres  # noqa: E402


async def bench(server: str, rows: int, workers: int, batch: int) -> None:
    schema = f"shoal_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(server)
    await conn.execute(f"CREATE SCHEMA {schema}")
    await conn.close()
    dsn = f"{server}{'&' if '?' in server else '?'}search_path={schema}"
    stores = [PostgresStore(dsn) for _ in range(workers)]
    for s in stores:
        await s.open()
    job = await stores[0].ensure_job("bench", mode="fetch", config={})
    requests = [
        NewRequest(
            url=f"http://h{i % 1000}.test/{i}", fingerprint=b"%d" % i, host=f"h{i % 1000}.test"
        )
        for i in range(rows)
    ]
    start = time.perf_counter()
    for i in range(0, rows, 5000):
        await stores[0].add_requests(job.id, requests[i : i + 5000], now=0.0)
    admit_s = time.perf_counter() - start

    async def work(store: PostgresStore, owner: str) -> int:
        done = 0
        while True:
            leased = await store.lease(job.id, owner, limit=batch, now=1.0, ttl=3600)
            if not leased:
                if (await store.counts(job.id)).open == 0:
                    return done
                await asyncio.sleep(0.005)
                continue
            results = [
                FetchResult(request_id=r.id, url=r.url, status=200, bytes=512, fetched_at=1.0)
                for r in leased
            ]
            await store.complete(job.id, owner, Completion(results=results), now=1.0)
            done += len(leased)

    start = time.perf_counter()
    done = await asyncio.gather(*(work(s, f"w{i}") for i, s in enumerate(stores)))
    work_s = time.perf_counter() - start
    for s in stores:
        await s.close()
    print(f"admitted {rows:,} rows in {admit_s:.2f}s: {rows / admit_s:,.0f} rows/s")
    print(
        f"{workers} workers leased+completed {sum(done):,} rows in {work_s:.2f}s: "
        f"{sum(done) / work_s:,.0f} rows/s (batch {batch})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    dsn = os.environ.get("SHOAL_BENCH_PG_DSN")
    if dsn:
        asyncio.run(bench(dsn, args.rows, args.workers, args.batch))
        return
    with ThrowawayPostgres(fsync=True) as pg:
        asyncio.run(bench(pg.dsn, args.rows, args.workers, args.batch))


if __name__ == "__main__":
    main()
