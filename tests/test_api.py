"""The Python API: streaming fetch and crawl, early stop, resume, and the sync wrapper."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

import shoal
from shoal import CrawlConfig, FetchResult, InputError, Limits, Timeouts
from shoal.store import SQLiteStore
from shoal.testweb import SiteSpec, TestWeb

REPO = Path(__file__).resolve().parent.parent
FAST = CrawlConfig(limits=Limits(concurrency=16), timeouts=Timeouts(total=10, connect=3, read=5))


async def collect(results: AsyncGenerator[FetchResult, None]) -> list[FetchResult]:
    async with contextlib.aclosing(results) as stream:
        return [r async for r in stream]


async def test_fetch_streams_results_before_the_last_request_is_made() -> None:
    async with TestWeb(SiteSpec(hosts=2, pages=20)) as web:
        # One request in flight per host: 6 URLs of 300 ms take about 0.9 s per host.
        urls = [web.url(h, f"/delay/300?n={i}") for h in range(2) for i in range(3)]
        arrivals: list[float] = []
        results: list[FetchResult] = []
        async with contextlib.aclosing(shoal.fetch(urls, per_host=1, config=FAST)) as stream:
            async for result in stream:
                arrivals.append(time.time())
                results.append(result)
        assert sorted(r.url for r in results) == sorted(urls)
        assert all(r.status == 200 for r in results)
        # The first result reached us before the last one was even fetched.
        assert arrivals[0] < max(r.fetched_at for r in results)


async def test_breaking_early_stops_the_crawler_and_releases_the_rest(tmp_path: Path) -> None:
    db = str(tmp_path / "api.db")
    async with TestWeb(SiteSpec(hosts=1, pages=20)) as web:
        urls = [web.url(0, f"/delay/200?n={i}") for i in range(50)]
        started = time.monotonic()
        async with contextlib.aclosing(
            shoal.fetch(urls, store=db, job="early", per_host=2, config=FAST)
        ) as stream:
            async for _ in stream:
                break
        assert time.monotonic() - started < 5, "the crawler did not stop promptly"
    store = SQLiteStore(db)
    await store.open()
    try:
        info = await store.get_job("early")
        assert info is not None
        counts = await store.counts(info.id)
        assert counts.total == 50
        assert 1 <= counts.finished < 50
        assert counts.open == 50 - counts.finished  # released, to be resumed
    finally:
        await store.close()


async def test_a_persistent_store_resumes_without_fetching_again(tmp_path: Path) -> None:
    db = str(tmp_path / "resume.db")
    async with TestWeb(SiteSpec(hosts=2, pages=20)) as web:
        urls = [web.url(h, f"/page/{p}") for h in range(2) for p in range(5)]
        first = await collect(shoal.fetch(urls, store=db, job="j", config=FAST))
        assert sorted(r.url for r in first) == sorted(urls)
        web.reset_stats()
        # Same store, same job: everything is recorded already, so nothing is yielded.
        assert await collect(shoal.fetch(urls, store=db, job="j", config=FAST)) == []
        assert sum(h.requests for h in web.stats().hosts) == 0
        # New URLs join the job; only they are fetched and yielded.
        more = [web.url(0, "/page/6"), web.url(1, "/page/7")]
        again = await collect(shoal.fetch(urls + more, store=db, job="j", config=FAST))
        assert sorted(r.url for r in again) == sorted(more)


async def test_crawl_finds_exactly_the_reachable_pages() -> None:
    async with TestWeb(SiteSpec(hosts=2, pages=20)) as web:
        results = await collect(shoal.crawl([web.url(0, "/")], config=FAST))
        found = [r.url for r in results]
        assert len(found) == len(set(found))
        assert set(found) == web.expected_pages(host=0, cross_host=False)


async def test_crawl_respects_depth_and_max_pages() -> None:
    async with TestWeb(SiteSpec(hosts=2, pages=20)) as web:
        shallow = await collect(shoal.crawl([web.url(0, "/")], depth=1, config=FAST))
        assert {r.url for r in shallow} == web.expected_pages(host=0, depth=1, cross_host=False)
        capped = await collect(shoal.crawl([web.url(0, "/")], max_pages=3, config=FAST))
        assert len(capped) == 3


async def test_an_invalid_url_raises_before_anything_is_fetched() -> None:
    async with TestWeb(SiteSpec(hosts=1, pages=5)) as web:
        urls = [web.url(0, "/page/1"), "not a url", web.url(0, "/page/2")]
        with pytest.raises(InputError) as caught:
            await collect(shoal.fetch(urls, config=FAST))
        assert caught.value.line_no == 2
        with pytest.raises(InputError):
            await collect(shoal.crawl(["ftp://nowhere"], config=FAST))
        assert sum(h.requests for h in web.stats().hosts) == 0


def test_fetch_all_from_synchronous_code() -> None:
    with TestWeb.run_in_thread(SiteSpec(hosts=2, pages=20)) as web:
        urls = [web.url(h, f"/page/{p}") for h in range(2) for p in range(4)]
        results = shoal.fetch_all(urls, config=FAST)
    assert sorted(r.url for r in results) == sorted(urls)
    assert all(r.status == 200 for r in results)


async def test_fetch_all_inside_a_running_loop() -> None:
    asyncio.get_running_loop()  # as in a notebook: a loop is running on this thread
    # The site must not share this loop: fetch_all blocks it until the fetch is done.
    with TestWeb.run_in_thread(SiteSpec(hosts=1, pages=10)) as web:
        urls = [web.url(0, f"/page/{p}") for p in range(4)]
        results = shoal.fetch_all(urls, config=FAST)
    assert sorted(r.url for r in results) == sorted(urls)


@pytest.mark.parametrize("script", ["fetch_urls.py", "crawl_site.py"])
def test_examples_run(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / script)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr


async def test_a_slow_consumer_holds_back_admission(tmp_path: Path) -> None:
    db = str(tmp_path / "slow.db")
    async with TestWeb(SiteSpec(hosts=1, pages=60)) as web:
        urls = [web.url(0, f"/page/{p}") for p in range(40)]
        stream = shoal.fetch(urls, store=db, job="slow", config=FAST, max_buffered=5)
        async with contextlib.aclosing(stream):
            seen = [await anext(stream)]
            await asyncio.sleep(1.0)  # a slow consumer: results pile up, admission waits
            store = SQLiteStore(db)
            await store.open()
            try:
                info = await store.get_job("slow")
                assert info is not None
                assert (await store.counts(info.id)).total == 5  # one chunk of max_buffered URLs
            finally:
                await store.close()
            seen += [r async for r in stream]
        assert sorted(r.url for r in seen) == sorted(urls)
