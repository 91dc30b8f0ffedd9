"""Crawling the whole zoo from its index: the crawl ends (the calendar trap is cut off by
the per-host page budget), every URL found is recorded once with its outcome, links on
badly encoded pages are still followed, and the event loop is never blocked."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from urllib.parse import urlsplit

import pytest

from shoal.core.config import HTTP_CLIENTS, CrawlConfig, Limits, Politeness, RetryPolicy, Timeouts
from shoal.core.model import FetchResult, NewRequest
from shoal.core.robots import RobotsPolicy
from shoal.core.scope import Scope
from shoal.core.traps import TrapLimits
from shoal.core.urls import canonicalize
from shoal.engine.pages.links import LinkProcessor
from shoal.engine.run.job import JobRun
from shoal.store import Store
from shoal.testweb import SiteSpec, TestWeb
from shoal.testweb._zoo import zoo_routes

from ..engine.test_crawler import results_by_url
from .conftest import ZooProcess, watching_the_loop
from .test_zoo_fetch import DIFFERENT, EXPECTED, deadline

PAGES_PER_HOST = 150
CONFIG = CrawlConfig(
    limits=Limits(concurrency=64),
    timeouts=Timeouts(total=5, connect=2, read=2.5),
    politeness=Politeness(per_host=16),
    retry=RetryPolicy(retries=1, backoff_base=0.05, backoff_cap=0.2, retry_after_cap=1),
    follow_links=True,
)

# In a crawl, redirects are recorded as responses and their targets followed as links.
CRAWL_EXPECTED = {
    **EXPECTED,
    "loop/a": (302, None),
    "chain/50": (302, None),
    **{name: (302, None) for name in EXPECTED if name.startswith("redirect-scheme/")},
}


async def crawl(
    store: Store, seed: str, http: str
) -> tuple[dict[str, FetchResult], dict[str, int]]:
    job = await store.ensure_job("zoo-crawl", mode="crawl", config={})
    await store.set_limits(job.id, max_pages=None, max_pages_per_host=PAGES_PER_HOST)
    seed = canonicalize(seed)
    await store.add_requests(job.id, [NewRequest.for_url(seed)], now=time.time())
    processor = LinkProcessor(scope=Scope(mode="any", seeds=(seed,)), traps=TrapLimits())
    async with asyncio.timeout(_crawl_deadline()):
        config = replace(CONFIG, http=http)
        outcome = await JobRun(store, job, config, processor=processor).run()
    assert outcome.completed
    return await results_by_url(store, job), (await store.summary(job.id)).rejected


def _crawl_deadline() -> float:
    # The hostile URLs are fetched in parallel (in one or two link levels); the calendar's
    # PAGES_PER_HOST cheap pages come after, a few at a time.
    return deadline(CONFIG) * 2 + PAGES_PER_HOST * 0.2


@pytest.mark.parametrize("http", HTTP_CLIENTS)
async def test_crawl_of_the_zoo_ends_and_records_everything(
    zoo: ZooProcess, sqlite_store: Store, http: str
) -> None:
    async with watching_the_loop(0.1) as slow:
        found, rejected = await crawl(sqlite_store, zoo.index_url, http)
    assert not slow, "the event loop was blocked:\n" + "\n".join(slow)

    expected = CRAWL_EXPECTED | DIFFERENT[http]
    wrong = {}
    for name, url in zoo.urls.items():
        if name in expected:
            result = found[canonicalize(url)]
            if (result.status, result.error_kind) != expected[name]:
                wrong[name] = (result.status, result.error_kind, result.error)
    assert not wrong

    # Every hop of the redirect chain and loop is its own URL, recorded once, up to
    # --max-redirects (10) hops: the hop past it, and the one closing the loop, are
    # too_many_redirects, and nothing after them is fetched.
    for n in range(41, 51):
        assert found[zoo.url(0, f"/zoo/chain/{n}")].error_kind is None
    tenth = found[zoo.url(0, "/zoo/chain/40")]
    assert (tenth.status, tenth.error_kind) == (302, "too_many_redirects")
    assert zoo.url(0, "/zoo/chain/39") not in found
    assert zoo.url(0, "/zoo/ok?from=chain") not in found
    closing = found[zoo.url(0, "/zoo/loop/b")]
    assert (closing.status, closing.error_kind) == (302, "too_many_redirects")

    # Links are still found on mislabelled, undecodable and one-line pages.
    for origin in (
        "long-line-start",
        "long-line-end",
        "charset-invalid-utf8",
        "charset-latin1-as-utf8",
        "charset-utf8-as-latin1",
        "charset-unknown-charset",
        "charset-meta-conflict",
        "charset-bom-lies",
    ):
        assert found[zoo.url(0, f"/zoo/ok?from={origin}")].status == 200, origin

    # The calendar never ends; the host's page budget ends it.
    calendar_host = urlsplit(zoo.urls["calendar"]).hostname
    calendar = [u for u in found if urlsplit(u).hostname == calendar_host]
    assert len(calendar) == PAGES_PER_HOST
    assert all(found[u].status == 200 for u in calendar)
    assert rejected.get("host_page_limit", 0) > 0


async def test_three_traps_at_once_end_in_bounded_time_with_every_row_labelled(
    sqlite_store: Store,
) -> None:
    """An endless redirect chain (host 0), an endless calendar of unique links (host 1)
    and a robots.txt that never answers (host 2), crawled at once with robots.txt obeyed
    and no page budget: the chain stops at --max-redirects, the calendar at the depth
    limit, the silent host after two robots.txt deadlines; every row says what happened."""
    spec = SiteSpec(hosts=3, pages=5, robots_faults=((2, "stall"),), first_address=230)
    config = CrawlConfig(
        limits=Limits(concurrency=32),
        timeouts=Timeouts(total=3, connect=2, read=2),
        politeness=Politeness(per_host=4),
        retry=RetryPolicy(retries=2, backoff_base=0.05, backoff_cap=0.2),
        follow_links=True,
    )
    async with TestWeb(spec, extra_routes=zoo_routes()) as web:
        chain = web.url(0, "/redirect-endless/0")
        calendar = web.url(1, "/zoo/calendar/2024/1")
        silent = web.url(2, "/")
        seeds = [chain, calendar, silent]
        job = await sqlite_store.ensure_job("three-traps", mode="crawl", config={})
        await sqlite_store.add_requests(
            job.id, [NewRequest.for_url(u) for u in seeds], now=time.time()
        )
        processor = LinkProcessor(
            scope=Scope(mode="host", seeds=tuple(seeds), max_depth=3), traps=TrapLimits()
        )
        crawler = JobRun(
            sqlite_store,
            job,
            config,
            processor=processor,
            robots=RobotsPolicy(user_agent_token="shoal"),
            strict_depth=True,
        )
        # docs/errors.md: robots.txt gives up after 2 deadlines (--timeout 3 s here);
        # the chain is 11 requests, the calendar a few hundred small pages.
        async with asyncio.timeout(120):
            outcome = await crawler.run()
        found = await results_by_url(sqlite_store, job)
    assert outcome.completed
    unlabelled = [u for u, r in found.items() if r.status is None and r.error_kind is None]
    assert not unlabelled
    hops = [u for u in found if "/redirect-endless/" in u]
    assert len(hops) == 11
    assert found[web.url(0, "/redirect-endless/10")].error_kind == "too_many_redirects"
    assert found[silent].error_kind in ("read_timeout", "timeout")
    assert [u for u in found if u.startswith(web.url(2, "/"))] == [silent]
    days = [u for u in found if "/zoo/calendar/" in u]
    assert len(days) > 30 and all(found[u].status in (200, 404) for u in days)
    assert max(found[u].depth for u in days) == 3
