"""The engine against a real testweb site and a real SQLite store."""

from __future__ import annotations

import asyncio
import time

import pytest

from shoal.core.config import HTTP_CLIENTS, CrawlConfig, Limits, Politeness, RetryPolicy, Timeouts
from shoal.core.inputs import parse_line
from shoal.core.model import FetchResult, JobInfo, NewRequest
from shoal.engine.run.job import JobRun
from shoal.store import Store
from shoal.testweb import TestWeb

from ..conftest import WaitFor


def requests_for(urls: list[str]) -> list[NewRequest]:
    parsed = [parse_line(url, n) for n, url in enumerate(urls, 1)]
    return [p for p in parsed if p is not None]


async def results_by_url(store: Store, job: JobInfo) -> dict[str, FetchResult]:
    found: dict[str, FetchResult] = {}
    async for batch in store.iter_results(job.id):
        for result in batch:
            assert result.url not in found, f"two results for {result.url}"
            found[result.url] = result
    return found


@pytest.fixture(params=HTTP_CLIENTS)
def http(request: pytest.FixtureRequest) -> str:
    """A test that takes it runs on every HTTP client a run can choose."""
    return str(request.param)


def quick(**overrides: object) -> CrawlConfig:
    base: dict[str, object] = {
        "limits": Limits(concurrency=32),
        "timeouts": Timeouts(total=10, connect=3, read=5),
        "retry": RetryPolicy(retries=2, backoff_base=0.05, backoff_cap=0.2),
    }
    base.update(overrides)
    return CrawlConfig(**base)  # type: ignore[arg-type]


async def test_fetches_every_url_once(
    web: TestWeb, sqlite_store: Store, fetch_job: JobInfo, http: str
) -> None:
    urls = [web.url(h, f"/page/{n}") for h in range(4) for n in range(50)]
    await sqlite_store.add_requests(fetch_job.id, requests_for(urls), now=time.time())
    outcome = await JobRun(sqlite_store, fetch_job, quick(http=http)).run()
    assert outcome.completed and not outcome.interrupted
    found = await results_by_url(sqlite_store, fetch_job)
    assert set(found) == set(urls)
    assert all(r.status in (200, 500) for r in found.values())
    counts = await sqlite_store.counts(fetch_job.id)
    assert counts.done == 200 and counts.open == 0
    served = web.stats()
    assert sum(h.paths[f"/page/{n}"] for h in served.hosts for n in range(50)) == 200


async def test_per_host_limit_and_delay_hold_server_side(
    web: TestWeb, sqlite_store: Store, fetch_job: JobInfo
) -> None:
    urls = [web.url(h, f"/delay/{30 + n}") for h in range(4) for n in range(12)]
    await sqlite_store.add_requests(fetch_job.id, requests_for(urls), now=time.time())
    config = quick(politeness=Politeness(per_host=2, delay=0.0), limits=Limits(concurrency=100))
    await JobRun(sqlite_store, fetch_job, config).run()
    for host in web.stats().hosts:
        assert host.requests == 12
        assert 1 <= host.max_in_flight <= 2

    web.reset_stats()
    job2 = await sqlite_store.ensure_job("spaced", mode="fetch", config={})
    spaced = [web.url(h, f"/page/{n}") for h in range(2) for n in range(5)]
    await sqlite_store.add_requests(job2.id, requests_for(spaced), now=time.time())
    config = quick(politeness=Politeness(per_host=4, delay=0.3))
    await JobRun(sqlite_store, job2, config).run()
    for host in web.stats().hosts[:2]:
        assert host.requests == 5
        assert host.max_in_flight == 1
        assert host.min_start_gap is not None and host.min_start_gap >= 0.25


async def test_global_concurrency_limit(
    web: TestWeb, sqlite_store: Store, fetch_job: JobInfo
) -> None:
    urls = [web.url(h, f"/delay/{100 + n}") for h in range(4) for n in range(10)]
    await sqlite_store.add_requests(fetch_job.id, requests_for(urls), now=time.time())
    config = quick(limits=Limits(concurrency=3), politeness=Politeness(per_host=8))
    await JobRun(sqlite_store, fetch_job, config).run()
    assert 1 <= web.stats().max_in_flight <= 3


async def test_retries_with_backoff_and_retry_after(
    web: TestWeb, sqlite_store: Store, fetch_job: JobInfo
) -> None:
    flaky = web.url(0, "/flaky/a?fail=2&code=503")
    limited = web.url(1, "/flaky/b?fail=1&code=429&retry_after=1")
    dated = web.url(2, "/flaky/c?fail=1&code=503&retry_after=date:2")
    hopeless = web.url(3, "/flaky/d?fail=99&code=500")
    await sqlite_store.add_requests(
        fetch_job.id, requests_for([flaky, limited, dated, hopeless]), now=time.time()
    )
    outcome = await JobRun(sqlite_store, fetch_job, quick()).run()
    assert outcome.completed
    found = await results_by_url(sqlite_store, fetch_job)
    assert (found[flaky].status, found[flaky].attempts) == (200, 3)
    assert (found[limited].status, found[limited].attempts) == (200, 2)
    assert (found[dated].status, found[dated].attempts) == (200, 2)
    assert (found[hopeless].status, found[hopeless].attempts) == (500, 3)  # retries=2
    assert outcome.stats.retries == 2 + 1 + 1 + 2

    def starts(host: int, key: str) -> list[float]:
        log = web.stats().hosts[host].log
        return sorted(r.start for r in log if r.path.startswith(f"/flaky/{key}"))

    b, c = starts(1, "b"), starts(2, "c")
    assert b[1] - b[0] >= 0.9  # Retry-After: 1
    assert c[1] - c[0] >= 0.9  # HTTP-date two seconds ahead (date has 1 s resolution)


async def test_failures_are_classified(
    web: TestWeb, sqlite_store: Store, fetch_job: JobInfo, http: str
) -> None:
    import socket

    with socket.socket() as s:  # a port with nothing listening: connection refused
        s.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{s.getsockname()[1]}/"
    stall_headers = web.url(0, "/stall?phase=headers")
    stall_body = web.url(1, "/stall?phase=body&after=10")
    big = web.url(2, "/bytes/300000")
    big_chunked = web.url(2, "/bytes/300000?chunked=1")
    loop_ = web.url(3, "/redirect-loop")
    chain = web.url(3, "/redirect/2")
    urls = [refused, stall_headers, stall_body, big, big_chunked, loop_, chain]
    await sqlite_store.add_requests(fetch_job.id, requests_for(urls), now=time.time())
    config = quick(
        http=http,
        timeouts=Timeouts(total=10, connect=2, read=0.5),
        limits=Limits(concurrency=16, max_bytes=100_000),
        retry=RetryPolicy(retries=0),
    )
    outcome = await JobRun(sqlite_store, fetch_job, config).run()
    found = await results_by_url(sqlite_store, fetch_job)
    assert found[refused].error_kind == "connect_error" and found[refused].status is None
    # bytes is what arrived: nothing of a body announced over the cap, up to the cap
    # (and at most one read past it) of one that is not; the totals add up the rows.
    assert found[big].bytes == 0 and "300000" in (found[big].error or "")
    assert 100_000 < found[big_chunked].bytes <= 300_000
    assert outcome.stats.bytes == sum(r.bytes for r in found.values())
    assert (await sqlite_store.summary(fetch_job.id)).bytes == outcome.stats.bytes
    assert found[stall_headers].error_kind == "read_timeout"
    assert found[stall_body].error_kind == "read_timeout"
    assert (found[big].status, found[big].error_kind) == (200, "too_large")
    assert (found[big_chunked].status, found[big_chunked].error_kind) == (200, "too_large")
    assert found[loop_].error_kind == "too_many_redirects"
    assert found[chain].status == 200
    assert found[chain].redirects == (chain, web.url(3, "/redirect/1"), web.url(3, "/redirect/0"))
    assert found[chain].final_url == web.url(3, "/page/0")
    counts = await sqlite_store.counts(fetch_job.id)
    assert counts.failed == 4 and counts.done == 3


async def test_graceful_stop_releases_and_resume_finishes(
    web: TestWeb, sqlite_store: Store, fetch_job: JobInfo, wait_for: WaitFor
) -> None:
    urls = [web.url(h, f"/delay/{150 + n}") for h in range(4) for n in range(40)]
    await sqlite_store.add_requests(fetch_job.id, requests_for(urls), now=time.time())
    config = quick(limits=Limits(concurrency=8), politeness=Politeness(per_host=2))
    crawler = JobRun(sqlite_store, fetch_job, config, shutdown_grace=5.0)
    task = asyncio.create_task(crawler.run())
    await wait_for(lambda: crawler.stats.done >= 10, 30.0)
    crawler.stop()
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.interrupted and not outcome.completed
    counts = await sqlite_store.counts(fetch_job.id)
    assert counts.leased == 0, "a graceful stop hands every leased row back"
    assert 10 <= counts.done < 160
    assert counts.done + counts.pending + counts.retry_wait == 160

    outcome = await JobRun(sqlite_store, fetch_job, config).run()
    assert outcome.completed
    found = await results_by_url(sqlite_store, fetch_job)
    assert set(found) == set(urls)


async def test_a_graceful_stop_says_how_many_requests_it_cut_off(
    web: TestWeb, sqlite_store: Store, fetch_job: JobInfo, wait_for: WaitFor
) -> None:
    """Requests still running when the grace runs out are released unfinished, and the
    outcome says how many (the CLI: "N still running at the grace left for the next run")."""
    urls = [web.url(h, f"/delay/{20_000 + n}") for h in range(4) for n in range(4)]
    await sqlite_store.add_requests(fetch_job.id, requests_for(urls), now=time.time())
    config = quick(limits=Limits(concurrency=6), politeness=Politeness(per_host=2))
    crawler = JobRun(sqlite_store, fetch_job, config, shutdown_grace=0.2)
    task = asyncio.create_task(crawler.run())
    await wait_for(lambda: crawler.stats.in_flight == 6, 30.0)
    crawler.stop()
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.interrupted and outcome.cut_off == 6
    counts = await sqlite_store.counts(fetch_job.id)
    assert (counts.leased, counts.finished, counts.pending) == (0, 0, 16)


async def test_body_saved_only_when_asked(
    web: TestWeb, sqlite_store: Store, fetch_job: JobInfo, http: str
) -> None:
    urls = [web.url(0, "/page/1"), web.url(0, "/page/2")]
    await sqlite_store.add_requests(fetch_job.id, requests_for(urls), now=time.time())
    await JobRun(sqlite_store, fetch_job, quick(http=http, save_bodies=True)).run()
    found = await results_by_url(sqlite_store, fetch_job)
    body_hash = found[urls[0]].body_hash
    assert body_hash is not None
    body = await sqlite_store.get_body(body_hash)
    assert body is not None and b"/page/2" in body

    job2 = await sqlite_store.ensure_job("nobody", mode="fetch", config={})
    await sqlite_store.add_requests(job2.id, requests_for([web.url(1, "/page/3")]), now=time.time())
    await JobRun(sqlite_store, job2, quick(http=http)).run()
    (only,) = (await results_by_url(sqlite_store, job2)).values()
    assert only.body_hash is not None and await sqlite_store.get_body(only.body_hash) is None


async def test_ten_thousand_urls(sqlite_store: Store, fetch_job: JobInfo, http: str) -> None:
    from shoal.testweb import SiteSpec

    async with TestWeb(SiteSpec(hosts=2, pages=10), record=False) as site:
        urls = [site.url(n % 2, f"/static/{n}") for n in range(10_000)]
        await sqlite_store.add_requests(fetch_job.id, requests_for(urls), now=time.time())
        config = quick(
            http=http, limits=Limits(concurrency=100), politeness=Politeness(per_host=50)
        )
        outcome = await JobRun(sqlite_store, fetch_job, config).run()
    assert outcome.completed
    summary = await sqlite_store.summary(fetch_job.id)
    assert summary.counts.done == 10_000
    assert summary.by_status_class == {"2xx": 10_000}


async def test_a_url_that_keeps_killing_workers_is_given_up(
    web: TestWeb, sqlite_store: Store, fetch_job: JobInfo
) -> None:
    url = web.url(0, "/page/1")
    await sqlite_store.add_requests(fetch_job.id, requests_for([url]), now=time.time())
    for _ in range(4):  # four workers died while fetching it
        (request,) = await sqlite_store.lease(
            fetch_job.id, "dead", limit=1, now=time.time(), ttl=60
        )
        await sqlite_store.mark_started(fetch_job.id, "dead", [request.id], now=time.time())
        await sqlite_store.release_leases(fetch_job.id, "dead", crashed=True, now=time.time())
    outcome = await JobRun(sqlite_store, fetch_job, quick(retry=RetryPolicy(retries=2))).run()
    assert outcome.completed
    found = await results_by_url(sqlite_store, fetch_job)
    assert found[url].error_kind == "internal_error"
    assert web.stats().hosts[0].paths["/page/1"] == 0


async def test_total_timeout_is_its_own_kind(
    web: TestWeb, sqlite_store: Store, fetch_job: JobInfo, http: str
) -> None:
    slow = web.url(0, "/delay/3000")
    await sqlite_store.add_requests(fetch_job.id, requests_for([slow]), now=time.time())
    config = quick(
        http=http, timeouts=Timeouts(total=0.5, connect=2, read=10), retry=RetryPolicy(retries=0)
    )
    await JobRun(sqlite_store, fetch_job, config).run()
    found = await results_by_url(sqlite_store, fetch_job)
    assert found[slow].error_kind == "timeout" and found[slow].status is None
