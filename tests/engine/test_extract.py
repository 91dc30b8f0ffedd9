"""Field extraction in the engine: off the event loop, only for 2xx pages, never fatal; and
the encoding recorded for pages whose links were read."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shoal.core.config import CrawlConfig, Limits, Timeouts
from shoal.core.extract import Extraction, ExtractRules
from shoal.core.model import FetchResult, NewRequest
from shoal.core.scope import Scope
from shoal.core.traps import TrapLimits
from shoal.engine.pages.fields import FieldExtractor
from shoal.engine.pages.links import LinkProcessor
from shoal.engine.run.job import JobRun
from shoal.store import SQLiteStore, Store
from shoal.testweb import SiteSpec, TestWeb

from .. import shop
from ..conftest import WaitFor

RULES = ExtractRules.of(shop.RULES)
FAST = CrawlConfig(limits=Limits(concurrency=8), timeouts=Timeouts(total=10, connect=3, read=5))


@pytest.fixture
async def site() -> AsyncIterator[TestWeb]:
    async with TestWeb(SiteSpec(hosts=1, pages=5), extra_routes=shop.routes) as web:
        yield web


def page(status: int | None = 200) -> FetchResult:
    return FetchResult(request_id=1, url="http://a.test/", status=status, content_type="text/html")


class Gated(FieldExtractor):
    """Extraction that waits for the test to let it go, noting the thread it runs on."""

    def __init__(self, rules: ExtractRules) -> None:
        super().__init__(rules)
        self.threads: list[int] = []
        self.gate = threading.Event()

    def _extract(self, result: FetchResult, body: bytes) -> Extraction:
        self.threads.append(threading.get_ident())
        assert self.gate.wait(10)
        return super()._extract(result, body)


async def test_extraction_runs_off_the_loop_which_stays_free(wait_for: WaitFor) -> None:
    extractor = Gated(RULES)
    result = page()
    try:
        extracting = asyncio.create_task(extractor(result, b"<title>Kettle</title>"))
        # The loop keeps running (this polling is on it) while extraction is held.
        await wait_for(lambda: bool(extractor.threads), 5)
        assert extractor.threads[0] != threading.get_ident()
        assert not extracting.done()
        extractor.gate.set()
        await extracting
    finally:
        extractor.gate.set()
        extractor.close()
    assert result.fields is not None and result.fields["title"] == "Kettle"
    assert result.encoding == "utf-8"


@pytest.mark.parametrize("status", [None, 301, 404, 500])
async def test_only_successful_pages_are_extracted(status: int | None) -> None:
    extractor = FieldExtractor(RULES)
    result = page(status)
    try:
        await extractor(result, b"<title>Not found</title>")
    finally:
        extractor.close()
    assert result.fields is None and result.encoding is None


async def test_an_unforeseen_failure_leaves_the_fields_null_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(FieldExtractor):
        def _extract(self, result: FetchResult, body: bytes) -> Extraction:
            raise RuntimeError("lexbor exploded")

    extractor = Broken(RULES)
    result = page()
    try:
        with caplog.at_level(logging.ERROR, logger="shoal.engine.pages.links"):
            await extractor(result, b"<title>x</title>")
    finally:
        extractor.close()
    assert result.fields is None
    assert "field extraction failed on http://a.test/" in caplog.text


async def run_job(
    store: Store, requests: list[NewRequest], config: CrawlConfig, **kw: object
) -> None:
    job = await store.ensure_job("t", mode="crawl" if config.follow_links else "fetch", config={})
    await store.add_requests(job.id, requests, now=time.time())
    outcome = await JobRun(store, job, config, **kw).run()  # type: ignore[arg-type]
    assert outcome.completed


async def stored(store: Store) -> dict[str, FetchResult]:
    job = await store.get_job("t")
    assert job is not None
    found: dict[str, FetchResult] = {}
    async for batch in store.iter_results(job.id):
        found.update((r.url.split("/shop/", 1)[1], r) for r in batch)
    return found


async def test_a_fetch_job_records_the_fields_of_every_page(site: TestWeb, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "f.db")
    await store.open()
    try:
        urls = [site.url(0, f"/shop/{p}") for p in shop.PAGES]
        config = CrawlConfig(limits=FAST.limits, timeouts=FAST.timeouts, extract=RULES)
        await run_job(store, [NewRequest.for_url(u) for u in urls], config)
        results = await stored(store)
    finally:
        await store.close()
    assert sorted(results) == sorted(shop.PAGES)
    for path, result in results.items():
        assert result.fields == shop.expected(path), path
        assert result.body is None  # kept for extraction, not stored


async def test_a_crawl_without_rules_records_the_encoding_links_were_read_in(
    site: TestWeb, tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "c.db")
    await store.open()
    seed = site.url(0, "/shop/")
    processor = LinkProcessor(scope=Scope(mode="host", seeds=(seed,)), traps=TrapLimits())
    seen: dict[str, FetchResult] = {}

    def listen(batch: object) -> None:
        for result in batch:  # type: ignore[attr-defined]
            seen[result.url.split("/shop/", 1)[1]] = result

    try:
        config = CrawlConfig(limits=FAST.limits, timeouts=FAST.timeouts, follow_links=True)
        await run_job(
            store, [NewRequest.for_url(seed)], config, processor=processor, listeners=[listen]
        )
    finally:
        await store.close()
    assert sorted(seen) == sorted(shop.PAGES)
    assert all(r.fields is None for r in seen.values())
    encodings = {path: r.encoding for path, r in seen.items()}
    # Declared, or UTF-8: link reading does no detection (it would hold the loop).
    assert encodings == {**shop.ENCODINGS, "garbage": "utf-8", "api/items": None}
