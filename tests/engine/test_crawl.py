"""Crawling testweb link graphs whose page sets are known."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter

import pytest

from shoal.core.config import CrawlConfig, Limits, Politeness, RetryPolicy, Timeouts
from shoal.core.model import FetchResult, JobInfo, NewRequest, Request
from shoal.core.robots import RobotsPolicy
from shoal.core.scope import Scope
from shoal.core.traps import TrapLimits
from shoal.core.urls import canonical_fingerprint, canonical_host, canonicalize
from shoal.engine.pages.links import MAX_SITEMAP_NESTING, LinkProcessor
from shoal.engine.run.job import JobRun
from shoal.store import Store
from shoal.testweb import SiteSpec, TestWeb

from .test_crawler import results_by_url


def crawl_config(**overrides: object) -> CrawlConfig:
    values: dict[str, object] = {
        "limits": Limits(concurrency=32),
        "timeouts": Timeouts(total=10, connect=3, read=5),
        "politeness": Politeness(per_host=4),
        "retry": RetryPolicy(retries=1, backoff_base=0.01, backoff_cap=0.05),
        "follow_links": True,
    }
    values.update(overrides)
    return CrawlConfig(**values)  # type: ignore[arg-type]


async def crawl(
    store: Store,
    name: str,
    seeds: list[str],
    *,
    mode: str = "host",
    depth: int | None = None,
    robots: bool = False,
    config: CrawlConfig | None = None,
) -> tuple[JobInfo, dict[str, tuple[int | None, str | None]]]:
    job = await store.ensure_job(name, mode="crawl", config={})
    canonical = [canonicalize(s) for s in seeds]
    await store.add_requests(
        job.id,
        [
            NewRequest(url=u, fingerprint=canonical_fingerprint(u), host=canonical_host(u))
            for u in canonical
        ],
        now=time.time(),
    )
    processor = LinkProcessor(
        scope=Scope(mode=mode, seeds=tuple(canonical), max_depth=depth),  # type: ignore[arg-type]
        traps=TrapLimits(),
    )
    outcome = await JobRun(
        store,
        job,
        config or crawl_config(),
        processor=processor,
        robots=RobotsPolicy(user_agent_token="shoal") if robots else None,
        strict_depth=depth is not None,
    ).run()
    assert outcome.completed
    found: dict[str, tuple[int | None, str | None]] = {}
    async for batch in store.iter_results(job.id):
        for r in batch:
            assert r.url not in found, f"{r.url} recorded twice"
            found[r.url] = (r.status, r.error_kind)
    return job, found


async def test_host_scope_finds_exactly_the_reachable_pages(sqlite_store: Store) -> None:
    spec = SiteSpec(hosts=3, pages=80, links_per_page=4, cross_host_links=0.3, error_rate=0.05)
    async with TestWeb(spec) as web:
        _, found = await crawl(sqlite_store, "host", [web.url(0, "/")])
        assert set(found) == web.expected_pages(host=0, cross_host=False)
        assert any(status == 500 for status, _ in found.values())
        served = web.stats()
        assert all(h.requests == 0 for h in served.hosts[1:]), "no request left host 0"


async def test_any_scope_follows_other_hosts(sqlite_store: Store) -> None:
    spec = SiteSpec(hosts=3, pages=40, links_per_page=3, cross_host_links=0.4)
    async with TestWeb(spec) as web:
        _, found = await crawl(sqlite_store, "any", [web.url(0, "/")], mode="any")
        assert set(found) == web.expected_pages(host=0, cross_host=True)
        assert {canonical_host(u) for u in found} == {
            canonical_host(b + "/") for b in web.base_urls
        }


async def test_depth_limit(sqlite_store: Store) -> None:
    spec = SiteSpec(hosts=1, pages=200, links_per_page=3)
    async with TestWeb(spec) as web:
        for depth in (0, 1, 2, 3):
            _, found = await crawl(sqlite_store, f"d{depth}", [web.url(0, "/")], depth=depth)
            assert set(found) == web.expected_pages(host=0, depth=depth), depth


async def test_robots_obeyed_and_fetched_once_per_host(sqlite_store: Store) -> None:
    robots = "User-agent: *\nDisallow: /page/1\nAllow: /page/10$\n"
    spec = SiteSpec(hosts=2, pages=30, links_per_page=3, cross_host_links=0.3, robots=robots)
    async with TestWeb(spec) as web:
        job, found = await crawl(sqlite_store, "robots", [web.url(0, "/")], mode="any", robots=True)
        kinds = Counter(kind for _, kind in found.values())
        assert kinds["robots_disallowed"] > 0
        for url, (status, kind) in found.items():
            path = url.split("/", 3)[3]
            blocked = path.startswith("page/1") and path != "page/10"
            assert (kind == "robots_disallowed") == blocked, url
            if blocked:
                assert status is None
        served = web.stats()
        for host in served.hosts:
            assert host.paths["/robots.txt"] == 1
            assert not any(p.startswith("/page/1") and p != "/page/10" for p in host.paths)


async def test_politeness_across_eight_hosts(sqlite_store: Store) -> None:
    """Spacing is enforced between request starts on the client; the server sees them
    shifted by connection set-up and loop jitter, hence the allowance below."""
    spec = SiteSpec(hosts=8, pages=12, links_per_page=3, cross_host_links=0.5, latency_ms=20)
    async with TestWeb(spec) as web:
        config = crawl_config(
            limits=Limits(concurrency=64), politeness=Politeness(per_host=2, delay=0.2)
        )
        _, found = await crawl(sqlite_store, "polite", [web.url(0, "/")], mode="any", config=config)
        assert set(found) == web.expected_pages(host=0)
        for host in web.stats().hosts:
            if host.requests:
                assert host.max_in_flight <= 2
                assert host.min_start_gap is None or host.min_start_gap >= 0.15


async def test_redirects_are_followed_as_links(sqlite_store: Store) -> None:
    spec = SiteSpec(hosts=1, pages=5, links_per_page=1)
    async with TestWeb(spec) as web:
        _, found = await crawl(sqlite_store, "redir", [web.url(0, "/redirect/2")], mode="any")
    assert found[web.url(0, "/redirect/2")][0] == 302
    assert found[web.url(0, "/redirect/1")][0] == 302
    assert found[web.url(0, "/redirect/0")][0] == 302
    assert found[web.url(0, "/page/0")][0] == 200


async def test_depth_limit_is_exact_under_high_concurrency(sqlite_store: Store) -> None:
    """With many requests in flight, deeper pages must not be fetched before shallower ones
    are finished, or a page first found on a long path hides its shorter one."""
    spec = SiteSpec(hosts=2, pages=400, links_per_page=6, cross_host_links=0.5, latency_ms=5)
    async with TestWeb(spec) as web:
        config = crawl_config(limits=Limits(concurrency=100), politeness=Politeness(per_host=50))
        for depth in (2, 3):
            _, found = await crawl(
                sqlite_store,
                f"deep{depth}",
                [web.url(0, "/")],
                mode="any",
                depth=depth,
                config=config,
            )
            assert set(found) == web.expected_pages(host=0, depth=depth), depth


async def test_sitemaps_reach_pages_links_do_not(sqlite_store: Store) -> None:
    spec = SiteSpec(hosts=1, pages=30, links_per_page=1, sitemaps=True)
    async with TestWeb(spec) as web:
        seeds = [web.url(0, "/page/20"), web.url(0, "/sitemap.xml")]
        _, found = await crawl(sqlite_store, "maps", seeds)
    pages = {web.url(0, f"/page/{n}") for n in range(30)}
    assert pages <= set(found), sorted(pages - set(found))[:5]


def refused_port(address: str = "127.0.0.1") -> int:
    """A port with nothing listening on ``address``: connections to it are refused."""
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


async def test_a_host_that_answered_then_failed_is_patient(sqlite_store: Store) -> None:
    """A host that answered once is paused after failures in a row, and given up
    (host_abandoned) only after many."""
    async with TestWeb(SiteSpec(hosts=1, pages=3)) as web:
        host = canonical_host(web.url(0, "/"))
        port = refused_port("127.0.0.2")
        job = await sqlite_store.ensure_job("patient", mode="fetch", config={})
        urls = [web.url(0, "/page/0")] + [f"http://127.0.0.2:{port}/{n}" for n in range(40)]
        await sqlite_store.add_requests(
            job.id,
            [NewRequest(url=u, fingerprint=canonical_fingerprint(u), host=host) for u in urls],
            now=time.time(),
        )
        config = crawl_config(
            follow_links=False, retry=RetryPolicy(retries=0), politeness=Politeness(per_host=1)
        )
        outcome = await JobRun(sqlite_store, job, config, host_pause=0.1).run()
    assert outcome.completed
    kinds: Counter[str] = Counter()
    async for batch in sqlite_store.iter_results(job.id):
        kinds.update(r.error_kind or "" for r in batch)
    assert kinds[""] == 1
    assert kinds["connect_error"] == 15  # paused after 5 and 10, given up after 15
    assert kinds["host_abandoned"] == 25


@pytest.mark.parametrize("robots", [False, True], ids=["no-robots", "robots"])
async def test_a_host_refusing_every_connection_is_given_up_at_once(
    sqlite_store: Store, robots: bool
) -> None:
    """A host that never answered and refuses connections is dead after a few failures in
    a row: every URL is recorded with the host's own error (connect_error), robots.txt or
    not, with no pause (the crawl would otherwise wait host_pause, 30 s here)."""
    port = refused_port()
    urls = [f"http://127.0.0.1:{port}/{n}" for n in range(300)]
    job = await sqlite_store.ensure_job(f"refused-{robots}", mode="crawl", config={})
    await sqlite_store.add_requests(job.id, [NewRequest.for_url(u) for u in urls], now=time.time())
    processor = LinkProcessor(scope=Scope(mode="host", seeds=(urls[0],)), traps=TrapLimits())
    config = crawl_config(retry=RetryPolicy(retries=3, backoff_base=0.05, backoff_cap=0.2))
    async with asyncio.timeout(20):  # docs/errors.md: within seconds
        outcome = await JobRun(
            sqlite_store,
            job,
            config,
            processor=processor,
            robots=RobotsPolicy(user_agent_token="shoal") if robots else None,
        ).run()
    assert outcome.completed
    found = await results_by_url(sqlite_store, job)
    assert len(found) == 300
    assert {r.error_kind for r in found.values()} == {"connect_error"}
    # Few attempts in all: a dead host is not retried URL by URL.
    assert sum(r.attempts for r in found.values()) < 300 + 10
    assert sum("the host never answered" in (r.error or "") for r in found.values()) > 290


async def test_a_robots_txt_that_never_answers_holds_its_host_a_bounded_time(
    sqlite_store: Store,
) -> None:
    """robots.txt that stalls or drips is cut off by the robots deadline (--timeout here),
    asked ROBOTS_ATTEMPTS times, and the host's URLs are recorded with that error; the
    other hosts are crawled meanwhile, and the progress shows who is waiting."""
    spec = SiteSpec(hosts=3, pages=10, links_per_page=2, robots_faults=((1, "stall"), (2, "drip")))
    async with TestWeb(spec) as web:
        seeds = [web.url(h, "/") for h in range(3)]
        job = await sqlite_store.ensure_job("robots-stall", mode="crawl", config={})
        await sqlite_store.add_requests(
            job.id, [NewRequest.for_url(u) for u in seeds], now=time.time()
        )
        processor = LinkProcessor(scope=Scope(mode="host", seeds=tuple(seeds)), traps=TrapLimits())
        config = crawl_config(timeouts=Timeouts(total=2.5, connect=1, read=1.8))
        crawler = JobRun(
            sqlite_store,
            job,
            config,
            processor=processor,
            robots=RobotsPolicy(user_agent_token="shoal"),
        )
        waiting: set[str] = set()

        async def watch() -> None:
            while True:
                waiting.update(crawler.snapshot().robots_waiting)
                await asyncio.sleep(0.05)

        async with asyncio.timeout(30), asyncio.TaskGroup() as tg:
            watcher = tg.create_task(watch())
            outcome = await crawler.run()
            watcher.cancel()
        found = await results_by_url(sqlite_store, job)
    assert outcome.completed
    assert web.url(1, "/").removesuffix("/") in waiting
    assert web.url(2, "/").removesuffix("/") in waiting
    assert found[seeds[1]].error_kind in ("read_timeout", "timeout")
    assert found[seeds[2]].error_kind == "timeout"  # a byte a second: every read is alive
    assert "robots.txt unreachable" in (found[seeds[2]].error or "")
    assert found[seeds[0]].status == 200
    assert len([u for u in found if u.startswith(web.url(0, "/"))]) > 1


async def test_a_robots_txt_answering_5xx_disallows_for_a_bounded_wait(
    sqlite_store: Store,
) -> None:
    """RFC 9309: a 5xx robots.txt means disallow all; the host's URLs wait for it to be
    asked again (unavailable_retry) at most --retries times, then are robots_disallowed."""
    spec = SiteSpec(hosts=1, pages=5, robots_faults=((0, "500"),))
    async with TestWeb(spec) as web:
        seed = web.url(0, "/")
        job = await sqlite_store.ensure_job("robots-5xx", mode="crawl", config={})
        await sqlite_store.add_requests(job.id, [NewRequest.for_url(seed)], now=time.time())
        processor = LinkProcessor(scope=Scope(mode="host", seeds=(seed,)), traps=TrapLimits())
        config = crawl_config(retry=RetryPolicy(retries=2, backoff_base=0.01, backoff_cap=0.05))
        policy = RobotsPolicy(user_agent_token="shoal", unavailable_retry=0.3)
        async with asyncio.timeout(20):
            outcome = await JobRun(
                sqlite_store, job, config, processor=processor, robots=policy
            ).run()
        found = await results_by_url(sqlite_store, job)
        robots_requests = sum(
            1 for r in web.stats().hosts[0].log if r.path.startswith("/robots.txt")
        )
    assert outcome.completed
    assert (found[seed].error_kind, found[seed].attempts) == ("robots_disallowed", 2)
    assert 2 <= robots_requests <= 3


async def test_page_limits_and_rejections_are_counted(sqlite_store: Store) -> None:
    spec = SiteSpec(hosts=2, pages=60, links_per_page=4, cross_host_links=0.3)
    async with TestWeb(spec) as web:
        job = await sqlite_store.ensure_job("limited", mode="crawl", config={})
        await sqlite_store.set_limits(job.id, max_pages=None, max_pages_per_host=10)
        _, found = await crawl(sqlite_store, "limited", [web.url(0, "/")], mode="any")
        per_host = Counter(canonical_host(u) for u in found)
        assert per_host and max(per_host.values()) == 10
        summary = await sqlite_store.summary(job.id)
        assert summary.rejected.get("host_page_limit", 0) > 0

        _, found = await crawl(sqlite_store, "scoped", [web.url(0, "/")], mode="host")
        summary = await sqlite_store.summary((await sqlite_store.get_job("scoped")).id)  # type: ignore[union-attr]
        assert summary.rejected.get("out_of_scope", 0) > 0


async def test_live_stats_count_links_not_followed(sqlite_store: Store) -> None:
    spec = SiteSpec(hosts=2, pages=20, links_per_page=3, cross_host_links=0.5)
    async with TestWeb(spec) as web:
        job = await sqlite_store.ensure_job("live", mode="crawl", config={})
        seed = canonicalize(web.url(0, "/"))
        await sqlite_store.add_requests(
            job.id,
            [
                NewRequest(
                    url=seed, fingerprint=canonical_fingerprint(seed), host=canonical_host(seed)
                )
            ],
            now=time.time(),
        )
        crawler = JobRun(
            sqlite_store,
            job,
            crawl_config(),
            processor=LinkProcessor(scope=Scope(mode="host", seeds=(seed,)), traps=TrapLimits()),
        )
        outcome = await crawler.run()
    assert outcome.stats.rejected.get("out_of_scope", 0) > 0
    assert (await sqlite_store.counters(job.id)) == outcome.stats.rejected


async def crawl_results(
    store: Store, name: str, seeds: list[str], processor: LinkProcessor, config: CrawlConfig
) -> dict[str, FetchResult]:
    job = await store.ensure_job(name, mode="crawl", config={})
    await store.add_requests(job.id, [NewRequest.for_url(u) for u in seeds], now=time.time())
    outcome = await JobRun(store, job, config, processor=processor).run()
    assert outcome.completed
    return await results_by_url(store, job)


async def test_an_endless_redirect_chain_ends_at_max_redirects(sqlite_store: Store) -> None:
    """Each hop is its own row, and the hops are counted along the chain: the one past
    --max-redirects is recorded as too_many_redirects, and nothing after it is fetched."""
    async with TestWeb(SiteSpec(hosts=1, pages=3)) as web:
        seed = web.url(0, "/redirect-endless/0")
        processor = LinkProcessor(
            scope=Scope(mode="host", seeds=(seed,)), traps=TrapLimits(), max_redirects=4
        )
        config = crawl_config(limits=Limits(concurrency=8, max_redirects=4))
        found = await crawl_results(sqlite_store, "endless", [seed], processor, config)
    hops = [web.url(0, f"/redirect-endless/{n}") for n in range(5)]
    assert set(found) == set(hops)
    for n, url in enumerate(hops):
        row = found[url]
        assert row.status == 302 and row.depth == 0
        # The row says where it went and how it was reached, as a fetch would.
        assert row.final_url == web.url(0, f"/redirect-endless/{n + 1}")
        assert row.redirects == tuple(hops[: n + 1])
        assert row.error_kind == (None if n < 4 else "too_many_redirects"), n
    assert processor.scope.adopted == ()  # same host: the scope did not change


async def test_a_redirect_target_keeps_the_depth_of_its_redirect(sqlite_store: Store) -> None:
    """A hop is not a level of the site: a redirect seed's target is fetched at depth 0
    even with --depth 0, and it records the chain that led to it."""
    async with TestWeb(SiteSpec(hosts=1, pages=5, links_per_page=2)) as web:
        seed = web.url(0, "/redirect/2")
        processor = LinkProcessor(
            scope=Scope(mode="host", seeds=(seed,), max_depth=0), traps=TrapLimits()
        )
        found = await crawl_results(sqlite_store, "redir-depth", [seed], processor, crawl_config())
    target = web.url(0, "/page/0")
    assert set(found) == {seed, web.url(0, "/redirect/1"), web.url(0, "/redirect/0"), target}
    assert (found[target].status, found[target].depth) == (200, 0)
    assert found[target].redirects == (seed, web.url(0, "/redirect/1"), web.url(0, "/redirect/0"))


async def test_a_prefix_seed_that_redirects_takes_its_targets_directory(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A seed whose own directory is "/" redirecting into /page/ scopes the crawl to /page/,
    not the whole host, and says so in one line."""
    async with TestWeb(SiteSpec(hosts=1, pages=20, links_per_page=3)) as web:
        seed = web.url(0, "/redirect-to?url=/page/0")
        processor = LinkProcessor(scope=Scope(mode="prefix", seeds=(seed,)), traps=TrapLimits())
        with caplog.at_level(logging.WARNING, logger="shoal.engine.pages.links"):
            found = await crawl_results(
                sqlite_store, "prefix-redir", [seed], processor, crawl_config()
            )
    others = {u for u in found if u != seed}
    assert others and all(u.startswith(web.url(0, "/page/")) for u in others), sorted(others)
    lines = [r.getMessage() for r in caplog.records if "redirects to" in r.getMessage()]
    assert lines == [
        f"seed {seed} redirects to {web.url(0, '/page/0')}: the crawl is limited to "
        f"{web.url(0, '/page/')}"
    ]


async def test_nested_sitemap_indexes_are_followed_five_levels_down(sqlite_store: Store) -> None:
    """Each index lists two more, forever: children of an index are at its depth (so
    --depth 0 does not stop them) and are followed MAX_SITEMAP_NESTING levels down."""
    async with TestWeb(SiteSpec(hosts=1, pages=3)) as web:
        seed = web.url(0, "/sitemap-nest/0.xml?fanout=2")
        processor = LinkProcessor(
            scope=Scope(mode="host", seeds=(seed,), max_depth=0), traps=TrapLimits()
        )
        job = await sqlite_store.ensure_job("nest", mode="crawl", config={})
        await sqlite_store.add_requests(job.id, [NewRequest.for_url(seed)], now=time.time())
        async with asyncio.timeout(60):
            outcome = await JobRun(sqlite_store, job, crawl_config(), processor=processor).run()
        found = await results_by_url(sqlite_store, job)
        rejected = (await sqlite_store.summary(job.id)).rejected
    assert outcome.completed
    assert MAX_SITEMAP_NESTING == 5
    assert len(found) == sum(2**level for level in range(6))  # levels 0..5
    assert {r.depth for r in found.values()} == {0}
    deepest = max(u.split("/")[-1].count("-") for u in found)
    assert deepest == 5
    assert rejected["sitemap_too_deep"] == 2**6


async def test_the_urls_taken_from_sitemaps_are_bounded(sqlite_store: Store) -> None:
    async with TestWeb(SiteSpec(hosts=1, pages=3)) as web:
        seed = web.url(0, "/sitemap-nest/0.xml?fanout=10")
        processor = LinkProcessor(
            scope=Scope(mode="host", seeds=(seed,)), traps=TrapLimits(), max_sitemap_entries=25
        )
        job = await sqlite_store.ensure_job("sitemap-cap", mode="crawl", config={})
        await sqlite_store.add_requests(job.id, [NewRequest.for_url(seed)], now=time.time())
        async with asyncio.timeout(60):
            outcome = await JobRun(sqlite_store, job, crawl_config(), processor=processor).run()
        found = await results_by_url(sqlite_store, job)
        rejected = (await sqlite_store.summary(job.id)).rejected
    assert outcome.completed
    assert len(found) == 1 + 25
    assert rejected["sitemap_limit"] == 25 * 10 - 15  # 10 per index fetched, 25 taken in all


def test_a_redirect_target_is_admitted_at_the_depth_of_the_row_that_redirected() -> None:
    processor = LinkProcessor(
        scope=Scope(mode="any", seeds=("http://a.test/",)), traps=TrapLimits()
    )
    rejected: Counter[str] = Counter()
    for depth in (0, 2):
        url = f"http://a.test/moved/{depth}"
        request = Request(id=1, url=url, host="a.test", depth=depth, parent_url="http://a.test/")
        result = FetchResult(
            request_id=1, url=url, status=301, headers=(("Location", "/new/" + str(depth)),)
        )
        [target] = processor(request, result, b"", rejected)
        assert (target.url, target.depth) == (f"http://a.test/new/{depth}", depth)
        assert result.final_url == target.url and result.redirects == (url,)
