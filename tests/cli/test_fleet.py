"""A fleet on PostgreSQL: ``shoal crawl`` plus ``shoal worker`` processes on one job.

Real processes, a real PostgreSQL, a real multi-host site. The site records,
server side, how many requests each host had in flight and how close their
starts came: politeness must hold across the whole fleet, not per process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from shoal.testweb import PageRef, SiteSpec, TestWeb, links_from
from shoal.testweb.pgcluster import ThrowawayPostgres

from ..conftest import fresh_schema
from .conftest import run_shoal, shoal_argv

PER_HOST, DELAY = 2, 0.2
FLEET_ENV = {**os.environ, "SHOAL_LEASE_TTL": "6"}


@pytest.fixture(scope="module")
def fleet_site() -> Iterator[TestWeb]:
    spec = SiteSpec(hosts=6, pages=60, links_per_page=4, cross_host_links=0.3, latency_ms=10)
    with TestWeb.run_in_thread(spec) as web:
        yield web


def reachable(web: TestWeb) -> set[str]:
    seen = {PageRef(0, None)}
    frontier = [PageRef(0, None)]
    while frontier:
        for target in links_from(web.spec, frontier.pop()):
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return {web.base_urls[ref.host] + ref.path for ref in seen}


async def results(dsn: str, job: str) -> list[tuple[str, int | None, str | None]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT r.url, r.status, r.error_kind FROM shoal_results r"
            " JOIN shoal_jobs j ON j.id = r.job_id WHERE j.name = $1 ORDER BY r.url",
            job,
        )
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()
    return [(r[0], r[1], r[2]) for r in rows]


async def wait_results(dsn: str, job: str, at_least: int, procs: list[subprocess.Popen[bytes]]):
    """Wait (at most 120 s) until the job has ``at_least`` results, or a process ended."""
    async with asyncio.timeout(120):
        while len(await results(dsn, job)) < at_least:
            if any(p.poll() is not None for p in procs):
                return
            await asyncio.sleep(0.05)


async def wait_workers(dsn: str, job: str, count: int, procs: list[subprocess.Popen[bytes]]):
    """Wait (at most 120 s) until ``count`` processes work on the job (registered, their
    store open), or a process ended."""
    conn = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(120):
            while not any(p.poll() is not None for p in procs):
                working = await conn.fetchval(
                    "SELECT count(*) FROM shoal_workers w JOIN shoal_jobs j ON j.id = w.job_id"
                    " WHERE j.name = $1",
                    job,
                )
                if working >= count:
                    return
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


def start(*args: str, cwd: Path, env: dict[str, str] = FLEET_ENV) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        shoal_argv(*args), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


async def finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    _, err = await asyncio.to_thread(proc.communicate, None, 180)
    return proc.returncode, err.decode(errors="replace")


def check_politeness(web: TestWeb) -> None:
    for host in web.stats().hosts:
        assert host.max_in_flight <= PER_HOST, host
        # Starts are measured by the server: a busy client loop shifts one start more than
        # the next, so allow some jitter under the delay (as the single-process tests do).
        assert host.min_start_gap is None or host.min_start_gap >= DELAY * 0.75, host


async def test_three_processes_one_killed_crawl_every_page_once_politely(
    fleet_site: TestWeb, pg_server: str, tmp_path: Path
) -> None:
    fleet_site.reset_stats()
    async with fresh_schema(pg_server) as dsn:
        crawl_args = (
            "crawl", fleet_site.url(0, "/"), "--store", dsn, "--job", "fleet", "--scope", "any",
            "--per-host", str(PER_HOST), "--delay", str(DELAY), "--quiet",
        )  # fmt: skip
        first = start(*crawl_args, cwd=tmp_path)
        await wait_results(dsn, "fleet", 20, [first])
        workers = [
            start("worker", "--store", dsn, "--job", "fleet", "--quiet", cwd=tmp_path)
            for _ in range(2)
        ]
        await wait_results(dsn, "fleet", 100, [first, *workers])
        victim = workers[0]
        assert victim.poll() is None, "the worker to kill ended early"
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        assert victim.stderr is not None
        victim.stderr.close()
        for proc in (first, workers[1]):
            code, err = await finish(proc)
            assert code == 0, err
            assert "Traceback" not in err
        rows = await results(dsn, "fleet")
    urls = [url for url, _, _ in rows]
    assert len(urls) == len(set(urls))
    assert set(urls) == reachable(fleet_site)
    assert all(status == 200 for _, status, _ in rows)
    check_politeness(fleet_site)


async def test_workers_ride_out_a_postgres_restart(fleet_site: TestWeb, tmp_path: Path) -> None:
    fleet_site.reset_stats()
    with ThrowawayPostgres() as pg:
        crawl_args = (
            "crawl", fleet_site.url(0, "/"), "--store", pg.dsn, "--job", "restart",
            "--scope", "any", "--per-host", str(PER_HOST), "--delay", str(DELAY),
        )  # fmt: skip
        first = start(*crawl_args, cwd=tmp_path)
        await wait_results(pg.dsn, "restart", 20, [first])
        other = start("worker", "--store", pg.dsn, "--job", "restart", cwd=tmp_path)
        await wait_results(pg.dsn, "restart", 80, [first, other])
        # Restarted while both work (a worker slow to start on a loaded machine would
        # otherwise meet it while opening the store, before it has anything to ride out).
        await wait_workers(pg.dsn, "restart", 2, [first, other])
        assert first.poll() is None and other.poll() is None
        await asyncio.to_thread(pg.restart)
        outcomes = [await finish(proc) for proc in (first, other)]
        for code, err in outcomes:
            assert code == 0, err
            assert "Traceback" not in err
        assert any("unavailable" in err for _, err in outcomes)
        rows = await results(pg.dsn, "restart")
    urls = [url for url, _, _ in rows]
    assert len(urls) == len(set(urls))
    assert set(urls) == reachable(fleet_site)
    check_politeness(fleet_site)


def test_worker_needs_an_existing_job(pg_server: str, tmp_path: Path) -> None:
    ran = run_shoal("worker", "--store", pg_server, "--job", "nope", cwd=tmp_path)
    assert ran.code == 2
    assert "no job 'nope'" in ran.stderr and "Traceback" not in ran.stderr


async def test_a_worker_frozen_past_its_leases_sends_none_of_the_rows_taken_over(
    pg_server: str, tmp_path: Path
) -> None:
    # One host, one request at a time: whatever the fleet sends to it, the server sees.
    spec = SiteSpec(hosts=1, pages=120, latency_ms=20)
    with TestWeb.run_in_thread(spec) as web:
        urls = tmp_path / "urls.txt"
        urls.write_text("".join(web.url(0, f"/page/{n}") + "\n" for n in range(1, 121)))
        env = {**FLEET_ENV, "SHOAL_LEASE_TTL": "3"}
        async with fresh_schema(pg_server) as dsn:
            fetch_args = (
                "fetch", str(urls), "--store", dsn, "--job", "lapse", "--per-host", "1",
                "--delay", "0.1", "--concurrency", "2", "--processes", "0", "--retries", "0",
                "--quiet",
            )  # fmt: skip
            frozen = start(*fetch_args, cwd=tmp_path, env=env)
            await wait_results(dsn, "lapse", 10, [frozen])
            # Frozen with every other row of the job leased to it: they are its own for
            # three seconds more, then another worker takes them over.
            frozen.send_signal(signal.SIGSTOP)
            try:
                worker_args = ("worker", "--store", dsn, "--job", "lapse", "--processes", "0")
                taking = start(*worker_args, "--quiet", cwd=tmp_path, env=env)
                before = len(await results(dsn, "lapse"))
                await wait_results(dsn, "lapse", before + 10, [taking])
            finally:
                frozen.send_signal(signal.SIGCONT)
            for proc in (frozen, taking):
                code, err = await finish(proc)
                assert code == 0, err
                assert "Traceback" not in err
            rows = await results(dsn, "lapse")
        host = web.stats().hosts[0]
    assert sorted(url for url, _, _ in rows) == sorted(urls.read_text().split())
    twice = sorted(path for path, count in host.paths.items() if count > 1)
    # What it had fetched and not yet written as it froze (a batch is written a few times a
    # second; one request at a time) is fetched again: a handful. Sending the rows taken
    # over would make it nearly all of the hundred it held.
    assert len(twice) <= 5, twice
