"""Redirects as each HTTP client follows them for a fetch: what is sent on each hop."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from aiohttp import web

from shoal.core.config import HTTP_CLIENTS, CrawlConfig, RetryPolicy, Timeouts
from shoal.core.model import FetchResult, JobInfo
from shoal.engine.run.job import JobRun
from shoal.store import Store

from .test_crawler import requests_for, results_by_url

# (port, method, path, X-Token header, body) of every request the servers got
Seen = list[tuple[int, str, str, str | None, bytes]]


class Origins:
    """One loopback server on two ports: two origins. ``/r?to=URL&status=N`` redirects."""

    def __init__(self) -> None:
        self.seen: Seen = []
        self.bases: list[str] = []

    def url(self, origin: int, path: str) -> str:
        return self.bases[origin] + path

    def redirect(self, origin: int, to: str, status: int) -> str:
        return self.url(origin, f"/r?to={quote(to, safe='')}&status={status}")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        port = request.transport.get_extra_info("sockname")[1] if request.transport else 0
        body = await request.read()
        self.seen.append((port, request.method, request.path, request.headers.get("X-Token"), body))
        if request.path == "/r":
            location = request.query["to"]
            return web.Response(status=int(request.query["status"]), headers={"Location": location})
        return web.Response(text="landed", content_type="text/html")


@pytest.fixture
async def origins() -> AsyncIterator[Origins]:
    served = Origins()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", served.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for _ in range(2):
        await web.TCPSite(runner, "127.0.0.1", 0).start()
    served.bases = [f"http://127.0.0.1:{address[1]}" for address in runner.addresses]
    try:
        yield served
    finally:
        await runner.cleanup()


async def fetch_lines(
    store: Store, job: JobInfo, lines: list[dict[str, object]], http: str
) -> dict[str, FetchResult]:
    await store.add_requests(
        job.id, requests_for([json.dumps(line) for line in lines]), now=time.time()
    )
    config = CrawlConfig(
        timeouts=Timeouts(total=10, connect=3, read=5), retry=RetryPolicy(retries=0), http=http
    )
    outcome = await JobRun(store, job, config).run()
    assert outcome.completed
    return await results_by_url(store, job)


@pytest.mark.parametrize("http", HTTP_CLIENTS)
@pytest.mark.parametrize(("status", "method_after"), [(303, "GET"), (302, "GET"), (307, "POST")])
async def test_a_post_redirected_is_sent_again_as_the_status_says(
    origins: Origins,
    sqlite_store: Store,
    fetch_job: JobInfo,
    http: str,
    status: int,
    method_after: str,
) -> None:
    landing = origins.url(0, "/landing")
    start = origins.redirect(0, landing, status)
    found = await fetch_lines(
        sqlite_store, fetch_job, [{"url": start, "method": "POST", "body": "hello"}], http
    )
    result = found[start]
    assert (result.status, result.final_url, result.redirects) == (200, landing, (start,))
    (_, first, _, _, sent), (_, then, path, _, body) = origins.seen
    assert (first, sent) == ("POST", b"hello")
    assert (then, path) == (method_after, "/landing")
    assert body == (b"hello" if method_after == "POST" else b"")


@pytest.mark.parametrize("http", HTTP_CLIENTS)
async def test_request_headers_stay_with_their_origin(
    origins: Origins, sqlite_store: Store, fetch_job: JobInfo, http: str
) -> None:
    """A request's own headers (a token, say) go to its origin, and to the same origin after
    a redirect, never to another one."""
    elsewhere = origins.url(1, "/landing")
    same = origins.url(0, "/landing")
    cross = origins.redirect(0, elsewhere, 302)
    local = origins.redirect(0, same, 302)
    lines = [{"url": url, "headers": {"X-Token": "secret"}} for url in (cross, local)]
    found = await fetch_lines(sqlite_store, fetch_job, lines, http)
    assert found[cross].final_url == elsewhere and found[local].final_url == same
    tokens = {(port, path, token) for port, _, path, token, _ in origins.seen}
    port_a, port_b = (int(base.rsplit(":", 1)[1]) for base in origins.bases)
    assert tokens == {
        (port_a, "/r", "secret"),
        (port_a, "/landing", "secret"),
        (port_b, "/landing", None),
    }
