"""Recrawling from the Python API: shoal.crawl/fetch with recrawl=, revisit_after=,
keep_history=, against testweb's /rev/ pages, checked at the server and in the store."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

import shoal
from shoal import ConfigError, CrawlConfig, FetchResult, Limits, Timeouts
from shoal.store import SQLiteStore
from shoal.testweb import SiteSpec, TestWeb

FAST = CrawlConfig(limits=Limits(concurrency=8), timeouts=Timeouts(total=10, connect=3, read=5))


async def collect(results: AsyncGenerator[FetchResult, None]) -> list[FetchResult]:
    async with contextlib.aclosing(results) as stream:
        return [r async for r in stream]


async def test_crawl_recrawl_yields_each_answer_with_what_it_meant(tmp_path: Path) -> None:
    db = str(tmp_path / "api.db")
    async with TestWeb(SiteSpec(hosts=1, pages=3)) as web:
        seed = web.url(0, "/rev/0")
        first = await collect(
            shoal.crawl([seed], store=db, job="rev", obey_robots=False, config=FAST)
        )
        assert len(first) == 6 and all(r.change is None for r in first)
        web.set_revision(1)
        web.reset_stats()
        again = await collect(
            shoal.crawl(
                [seed],
                store=db,
                job="rev",
                obey_robots=False,
                config=FAST,
                recrawl=True,
                keep_history=1,
            )
        )
        assert web.revisions() == (6, 2)
        changes = Counter(r.change for r in again)
        assert changes == {"unchanged": 2, "changed": 3, "gone": 1, None: 2}
        assert {r.url for r in again if r.change is None} == {
            web.url(0, "/rev/6"),
            web.url(0, "/rev/7"),
        }
        # Nothing is older than a day: a recrawl with revisit_after asks nothing.
        web.reset_stats()
        none = await collect(
            shoal.crawl(
                [seed],
                store=db,
                job="rev",
                obey_robots=False,
                config=FAST,
                revisit_after="1d",
                keep_history=1,
            )
        )
        assert none == [] and web.revisions().conditional == 0
    async with SQLiteStore(db) as store:
        job = await store.get_job("rev")
        assert job is not None
        assert job.config["keep_history"] == 1
        past = await store.history(job.id, web.url(0, "/rev/2"))
        assert [r.etag for r in past] == ['"p2-v0"']


def test_fetch_all_recrawl_and_bad_recrawl_settings(tmp_path: Path) -> None:
    db = str(tmp_path / "api.db")
    with TestWeb.run_in_thread(SiteSpec(hosts=1, pages=3)) as web:
        urls = [web.url(0, f"/rev/{n}") for n in (1, 2)]
        assert len(shoal.fetch_all(urls, store=db, job="f", config=FAST)) == 2
        web.set_revision(1)
        again = shoal.fetch_all(urls, store=db, job="f", config=FAST, recrawl=True)
        assert sorted((r.url, r.change) for r in again) == [
            (urls[0], "unchanged"),
            (urls[1], "changed"),
        ]
        assert web.revisions().not_modified == 1
        for bad in ({"revisit_after": "soon"}, {"revisit_after": -1}, {"keep_history": -1}):
            with pytest.raises(ConfigError):
                shoal.fetch_all(urls, store=db, job="f", config=FAST, **bad)  # type: ignore[arg-type]
