"""HTTP/2 over TLS (ALPN): offered with ``http2`` on the pyreqwest client, not otherwise."""

from __future__ import annotations

import time

import pytest

from shoal.core.config import CrawlConfig, RetryPolicy, Timeouts
from shoal.core.model import JobInfo
from shoal.engine.run.job import JobRun
from shoal.store import Store
from shoal.testweb._tls import tls_available
from shoal.testweb.h2 import Http2Endpoint

from .test_crawler import requests_for, results_by_url

pytestmark = pytest.mark.skipif(not tls_available(), reason="needs cryptography")


@pytest.mark.parametrize(
    ("http", "http2", "spoken"),
    [
        ("pyreqwest", True, "HTTP/2"),
        ("pyreqwest", False, "HTTP/1.1"),
        ("aiohttp", False, "HTTP/1.1"),
    ],
)
async def test_http2_is_spoken_when_offered(
    sqlite_store: Store, fetch_job: JobInfo, http: str, http2: bool, spoken: str
) -> None:
    async with Http2Endpoint() as site:
        urls = [site.url(f"/page/{n}") for n in range(20)]
        await sqlite_store.add_requests(fetch_job.id, requests_for(urls), now=time.time())
        config = CrawlConfig(
            timeouts=Timeouts(total=10, connect=5, read=5),
            retry=RetryPolicy(retries=0),
            verify_tls=False,
            http=http,
            http2=http2,
        )
        outcome = await JobRun(sqlite_store, fetch_job, config).run()
        assert outcome.completed
    found = await results_by_url(sqlite_store, fetch_job)
    for url in urls:
        result = found[url]
        assert (result.status, result.error_kind) == (200, None), result.error
        headers = {name.lower(): value for name, value in result.headers}
        assert headers["x-protocol"] == spoken
    assert site.versions == [spoken] * len(urls)


async def test_http2_needs_a_verified_certificate_too(
    sqlite_store: Store, fetch_job: JobInfo
) -> None:
    async with Http2Endpoint() as site:
        url = site.url("/")
        await sqlite_store.add_requests(fetch_job.id, requests_for([url]), now=time.time())
        config = CrawlConfig(retry=RetryPolicy(retries=0), http="pyreqwest", http2=True)
        await JobRun(sqlite_store, fetch_job, config).run()
    result = (await results_by_url(sqlite_store, fetch_job))[url]
    assert (result.status, result.error_kind) == (None, "certificate_error")
    assert site.versions == []
