"""The crash-loop guard: a URL that kills every process fetching it is given up; a URL that
was merely leased by a process that died is fetched like any other.

A dead worker's rows come back suspect (``Request.suspect``); the engine marks a suspect row
started in the store before fetching it and writes its outcome before going on, so that the
rows in flight at a death, and only those, count a crash (``Request.crashes``).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from shoal.core.config import CrawlConfig, Limits, RetryPolicy, Timeouts
from shoal.core.inputs import parse_line
from shoal.core.model import Completion, JobInfo, NewRequest
from shoal.engine.run.job import CRASH_LIMIT, JobRun
from shoal.store import SQLiteStore, Store
from shoal.testweb import TestWeb

from .test_crawler import results_by_url

POISON_CHILD = str(Path(__file__).with_name("_poison_child.py"))


def requests_for(urls: list[str]) -> list[NewRequest]:
    parsed = [parse_line(url, n) for n, url in enumerate(urls, 1)]
    return [p for p in parsed if p is not None]


def quick() -> CrawlConfig:
    return CrawlConfig(
        limits=Limits(concurrency=32),
        timeouts=Timeouts(total=10, connect=3, read=5),
        retry=RetryPolicy(retries=1, backoff_base=0.05, backoff_cap=0.2),
    )


async def die_holding(
    store: Store, job: JobInfo, owner: str, *, started: Sequence[str]
) -> dict[str, int]:
    """A worker leases every due row, marks those of ``started`` started, and dies.
    Returns the ids of the rows it held, by URL."""
    leased = {
        r.url: r.id for r in await store.lease(job.id, owner, limit=1000, now=time.time(), ttl=60)
    }
    ids = [leased[url] for url in started]
    assert await store.mark_started(job.id, owner, ids, now=time.time()) == len(started)
    assert await store.release_leases(job.id, owner, crashed=True, now=time.time()) == len(leased)
    return leased


async def test_a_url_in_flight_at_too_many_deaths_is_given_up_unfetched(
    web: TestWeb, sqlite_store: Store, fetch_job: JobInfo
) -> None:
    given_up, at_limit, leased_only, plain = (
        r.url for r in requests_for([web.url(0, f"/static/{n}") for n in range(4)])
    )
    await sqlite_store.add_requests(
        fetch_job.id, requests_for([given_up, at_limit, leased_only]), now=time.time()
    )
    for death in range(CRASH_LIMIT + 1):
        started = [given_up] if death == CRASH_LIMIT else [given_up, at_limit]
        await die_holding(sqlite_store, fetch_job, f"dead-{death}", started=started)
    await sqlite_store.add_requests(fetch_job.id, requests_for([plain]), now=time.time())

    outcome = await JobRun(sqlite_store, fetch_job, quick()).run()

    assert outcome.completed
    found = await results_by_url(sqlite_store, fetch_job)
    assert (found[given_up].status, found[given_up].error_kind) == (None, "internal_error")
    assert found[given_up].error == (
        f"the process fetching this URL died {CRASH_LIMIT + 1} times while it was in flight;"
        " given up"
    )
    assert found[given_up].attempts == 0
    for url in (at_limit, leased_only, plain):
        assert (found[url].status, found[url].error_kind, found[url].attempts) == (200, None, 1)
    paths = web.stats().hosts[0].paths
    assert [paths[f"/static/{n}"] for n in range(4)] == [0, 1, 1, 1]


async def test_suspects_are_marked_and_written_before_blamed_ones_go_alone(
    web: TestWeb, sqlite_store: Store, fetch_job: JobInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows in flight at a death go one at a time; rows merely leased go side by side; rows
    no dead worker held are never marked."""
    blamed = [r.url for r in requests_for([web.url(h, f"/delay/{150 + h}") for h in range(4)])]
    leased = [r.url for r in requests_for([web.url(n % 4, f"/delay/{200 + n}") for n in range(8)])]
    plain = [r.url for r in requests_for([web.url(h, f"/static/{h}") for h in range(4)])]
    await sqlite_store.add_requests(fetch_job.id, requests_for(blamed + leased), now=time.time())
    held = await die_holding(sqlite_store, fetch_job, "dead", started=blamed)
    await sqlite_store.add_requests(fetch_job.id, requests_for(plain), now=time.time())
    blamed_ids = {held[url] for url in blamed}
    leased_ids = {held[url] for url in leased}

    marked: set[int] = set()
    in_flight: set[int] = set()  # marked started and not yet written
    peaks = {"blamed": 0, "leased": 0}
    mark_started, complete = sqlite_store.mark_started, sqlite_store.complete

    async def spy_mark(job_id: int, owner: str, ids: Sequence[int], *, now: float) -> int:
        count = await mark_started(job_id, owner, ids, now=now)
        marked.update(ids)
        in_flight.update(ids)
        peaks["blamed"] = max(peaks["blamed"], len(in_flight & blamed_ids))
        peaks["leased"] = max(peaks["leased"], len(in_flight & leased_ids))
        return count

    async def spy_complete(job_id: int, owner: str, batch: Completion, *, now: float) -> int:
        admitted = await complete(job_id, owner, batch, now=now)
        in_flight.difference_update(r.request_id for r in batch.results)
        in_flight.difference_update(u.request_id for u in batch.retries)
        return admitted

    monkeypatch.setattr(sqlite_store, "mark_started", spy_mark)
    monkeypatch.setattr(sqlite_store, "complete", spy_complete)
    outcome = await JobRun(sqlite_store, fetch_job, quick()).run()

    assert outcome.completed
    found = await results_by_url(sqlite_store, fetch_job)
    assert {url: r.status for url, r in found.items()} == dict.fromkeys(
        blamed + leased + plain, 200
    )
    assert marked == blamed_ids | leased_ids
    assert not in_flight
    assert peaks == {"blamed": 1, "leased": len(leased)}


@pytest.mark.timeout(120)
async def test_a_url_that_kills_every_process_fetching_it_ends_the_crash_loop(
    web: TestWeb, tmp_path: Path
) -> None:
    """Each run dies fetching the poison; the next takes back the dead one's rows. After
    CRASH_LIMIT + 1 deaths with the poison marked started (the first death finds it an
    ordinary row), a run records it as internal_error and finishes; nothing else is lost."""
    db = tmp_path / "shoal.db"
    urls = [web.url(n % 4, f"/static/{n}") for n in range(40)]
    poison = urls[13]
    runs = []
    for _ in range(CRASH_LIMIT + 4):
        child = await asyncio.create_subprocess_exec(
            sys.executable, POISON_CHILD, str(db), poison, *urls, stderr=asyncio.subprocess.PIPE
        )
        _, err = await child.communicate()
        runs.append(child.returncode)
        if child.returncode != -9:
            assert child.returncode == 0, err.decode()
            break
    assert runs == [-9] * (CRASH_LIMIT + 2) + [0]

    async with SQLiteStore(db) as store:
        job = await store.get_job("poison")
        assert job is not None
        found = await results_by_url(store, job)
    (poisoned,) = requests_for([poison])
    assert set(found) == {r.url for r in requests_for(urls)}
    assert found.pop(poisoned.url).error_kind == "internal_error"
    assert {r.status for r in found.values()} == {200}
