"""Throughput of the SQLite store's hot path (not a test; run it by hand).

    .venv/bin/python tests/store/bench_sqlite.py [rows] [batch]

Admits ``rows`` requests, leases them and completes them, ``batch`` at a time,
and prints rows/s for each phase (rows/s of ``complete`` counts results, not
the discovered requests admitted with them); then the same with discovered
links and saved bodies riding along in ``complete``.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time

import xxhash

from shoal.core.model import Completion, FetchResult, NewRequest
from shoal.store import SQLiteStore

HEADERS = (
    ("content-type", "text/html; charset=utf-8"),
    ("server", "nginx/1.25.3"),
    ("date", "Sat, 21 Nov 2026 10:44:00 GMT"),
    ("cache-control", "max-age=600"),
    ("etag", '"5f1c-61a2b3c4d5e6f"'),
    ("content-length", "24412"),
)


def new_request(i: int, depth: int = 0) -> NewRequest:
    url = f"https://host{i % 97}.example/section/{i // 97}/page-{i}.html"
    return NewRequest(
        url=url,
        fingerprint=xxhash.xxh3_128_digest(url.encode()),
        host=f"host{i % 97}.example",
        depth=depth,
    )


def result(request_id: int, url: str, now: float, body: bytes | None = None) -> FetchResult:
    return FetchResult(
        request_id=request_id,
        url=url,
        final_url=url,
        status=200,
        headers=HEADERS,
        content_type="text/html",
        bytes=24412,
        body_hash=None if body is None else xxhash.xxh3_128_hexdigest(body),
        body=body,
        ttfb_ms=12.5,
        elapsed_ms=40.25,
        fetched_at=now,
    )


async def run(
    rows: int, batch: int, *, links: int, known: int = 0, bodies: bool = False
) -> dict[str, float]:
    """``links`` new and ``known`` already admitted discovered requests ride on each result;
    8 in 9 known ones are among 200 navigation links, the rest are any earlier request."""
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        async with SQLiteStore(os.path.join(tmp, "bench.db")) as store:
            job = await store.ensure_job("bench", mode="crawl", config={})
            now = time.time()
            batches = [
                [new_request(i) for i in range(start, min(start + batch, rows))]
                for start in range(0, rows, batch)
            ]
            started = time.perf_counter()
            for requests in batches:
                await store.add_requests(job.id, requests, now=now)
            add_s = time.perf_counter() - started

            lease_s = complete_s = 0.0
            next_link = rows
            completed = 0
            while completed < rows:
                t0 = time.perf_counter()
                leased = await store.lease(job.id, "bench", limit=batch, now=now, ttl=60)
                lease_s += time.perf_counter() - t0
                discovered = []
                for _ in range(len(leased)):
                    for _ in range(links):
                        discovered.append(new_request(next_link, depth=1))
                        next_link += 1
                    # Like a site: most known links are the same navigation links again.
                    nav = known * 8 // 9
                    discovered.extend(new_request(rng.randrange(200), depth=1) for _ in range(nav))
                    discovered.extend(
                        new_request(rng.randrange(next_link), depth=1) for _ in range(known - nav)
                    )
                done = Completion(
                    results=[
                        result(
                            r.id,
                            r.url,
                            now,
                            body=(r.url.encode() * 200) if bodies else None,
                        )
                        for r in leased
                    ],
                    discovered=discovered,
                )
                t0 = time.perf_counter()
                await store.complete(job.id, "bench", done, now=now)
                complete_s += time.perf_counter() - t0
                completed += len(leased)
            counts = await store.counts(job.id)
            assert counts.done == rows, counts
            t0 = time.perf_counter()
            exported = 0
            async for chunk in store.iter_results(job.id, batch_size=batch):
                exported += len(chunk)
            export_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            await store.summary(job.id)
            summary_s = time.perf_counter() - t0
            db_mib = await asyncio.to_thread(os.path.getsize, os.path.join(tmp, "bench.db")) / 2**20
    return {
        "add": rows / add_s,
        "lease": rows / lease_s,
        "complete": rows / complete_s,
        "lease+complete": rows / (lease_s + complete_s),
        "iter_results": exported / export_s,
        "summary_ms": summary_s * 1000,
        "db_mib": db_mib,
    }


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    for label, links, known, bodies in (
        ("plain", 0, 0, False),
        ("+10 new discovered links per result", 10, 0, False),
        ("+50 discovered links per result, 45 already known", 5, 45, False),
        ("+bodies (~12 KB each, zstd 3)", 0, 0, True),
    ):
        numbers = asyncio.run(run(rows, batch, links=links, known=known, bodies=bodies))
        shown = ", ".join(
            f"{name} {value:,.0f} rows/s"
            if not name.endswith(("_ms", "_mib"))
            else f"{name} {value:,.1f}"
            for name, value in numbers.items()
        )
        print(f"{rows:,} rows, batches of {batch}, {label}: {shown}")


if __name__ == "__main__":
    main()
