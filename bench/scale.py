"""Scale-out benchmark: one crawl on SQLite vs 1 and 2 worker processes on PostgreSQL.

    .venv/bin/python bench/scale.py [--hosts 8] [--pages 2500] [--concurrency 64]

The same multi-host testweb site (in its own process, hosts 127.0.0.2...) is
crawled three times in one run, each from scratch:

    sqlite x1     shoal crawl --store FILE
    postgres x1   shoal crawl --store postgresql://...
    postgres x2   shoal crawl --store postgresql://... plus one shoal worker, same job

and pages/s (pages / wall time of the whole fleet) and client CPU µs/page are
printed, with the ratios. PostgreSQL comes from SHOAL_BENCH_PG_DSN or a
throwaway cluster (fsync on). Bounded: a fixed site, and every run is killed
after 300 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from shoal.testweb.pgcluster import ThrowawayPostgres  # noqa: E402

LIMIT_S = 300.0


@contextmanager
def site(hosts: int, pages: int) -> Iterator[list[str]]:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "shoal.testweb", "--hosts", str(hosts), "--pages", str(pages),
            "--links", "5", "--cross-host", "0.1", "--no-log", "--no-sitemaps",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        yield list(json.loads(proc.stdout.readline())["base_urls"])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


@contextmanager
def postgres() -> Iterator[str]:
    dsn = os.environ.get("SHOAL_BENCH_PG_DSN")
    if dsn:
        yield dsn
        return
    with ThrowawayPostgres(fsync=True) as pg:
        yield pg.dsn


async def _fresh_schema(server: str) -> str:
    schema = f"shoal_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()
    return f"{server}{'&' if '?' in server else '?'}search_path={schema}"


def _job_exists(store: str, job: str) -> bool:
    import asyncio

    from shoal.store import open_store

    async def check() -> bool:
        s = open_store(store)
        try:
            await s.open()
            return await s.get_job(job) is not None
        except Exception:
            return False
        finally:
            await s.close()

    return asyncio.run(check())


def run_fleet(name: str, store: str, seeds: list[str], workers: int, concurrency: int) -> dict:
    """Start ``shoal crawl`` and ``workers - 1`` ``shoal worker`` processes on one job."""
    shoal = [sys.executable, "-m", "shoal"]
    common = ["--store", store, "--job", "bench", "--quiet"]
    crawl = [
        *shoal, "crawl", *seeds, *common, "--scope", "any", "--per-host", "16",
        "--concurrency", str(concurrency), "--ignore-robots",
    ]  # fmt: skip
    start = time.perf_counter()
    procs = [subprocess.Popen(crawl, stdout=subprocess.DEVNULL)]
    if workers > 1:
        while not _job_exists(store, "bench") and time.perf_counter() - start < 30:
            time.sleep(0.02)
        worker = [*shoal, "worker", *common, "--concurrency", str(concurrency)]
        procs += [subprocess.Popen(worker, stdout=subprocess.DEVNULL) for _ in range(workers - 1)]
    cpu = 0.0
    codes = []
    for proc in procs:
        remaining = max(1.0, LIMIT_S - (time.perf_counter() - start))
        try:
            _, status, usage = _wait4(proc, remaining)
        except TimeoutError:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
        cpu += usage.ru_utime + usage.ru_stime
        codes.append(os.waitstatus_to_exitcode(status))
    wall = time.perf_counter() - start
    return {"name": name, "wall": wall, "cpu": cpu, "codes": codes}


def _wait4(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, int, os.struct_rusage]:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return pid, status, usage
        time.sleep(0.01)
    raise TimeoutError


def count_pages(store: str) -> int:
    import asyncio

    from shoal.store import open_store

    async def count() -> int:
        s = open_store(store)
        await s.open()
        try:
            job = await s.get_job("bench")
            assert job is not None
            return (await s.counts(job.id)).finished
        finally:
            await s.close()

    return asyncio.run(count())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--pages", type=int, default=2500, help="pages per host")
    parser.add_argument("--concurrency", type=int, default=64, help="per process")
    args = parser.parse_args()
    import asyncio

    rows = []
    with site(args.hosts, args.pages) as bases, postgres() as server:
        seeds = [base + "/" for base in bases]
        with tempfile.TemporaryDirectory(prefix="shoal-scale-") as tmp:
            runs = [
                ("sqlite x1", str(Path(tmp) / "bench.db"), 1),
                ("postgres x1", asyncio.run(_fresh_schema(server)), 1),
                ("postgres x2", asyncio.run(_fresh_schema(server)), 2),
            ]
            for name, store, workers in runs:
                measured = run_fleet(name, store, seeds, workers, args.concurrency)
                measured["pages"] = count_pages(store)
                rows.append(measured)
    base = rows[0]["pages"] / rows[0]["wall"]
    print(f"site: {args.hosts} hosts x {args.pages} pages, concurrency {args.concurrency}/process")
    header = ("run", "pages", "wall s", "pages/s", "CPU µs/page", "vs sqlite")
    print(
        f"{header[0]:<14}{header[1]:>8}{header[2]:>9}{header[3]:>10}{header[4]:>13}{header[5]:>11}"
    )
    for row in rows:
        rate = row["pages"] / row["wall"]
        per_page = 1e6 * row["cpu"] / max(row["pages"], 1)
        print(
            f"{row['name']:<14}{row['pages']:>8}{row['wall']:>9.2f}{rate:>10.0f}"
            f"{per_page:>13.0f}{rate / base:>10.2f}x   exit {row['codes']}"
        )


if __name__ == "__main__":
    main()
