"""Server-side request recording: counts, in-flight maxima, start gaps, reset."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable

import aiohttp

from shoal.testweb import SiteSpec, TestWeb, TestWebStats

WaitUntil = Callable[[Callable[[], bool]], Awaitable[None]]


async def _status(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as response:
        await response.read()
        return response.status


async def test_concurrent_requests_overlap(session: aiohttp.ClientSession) -> None:
    n = 8
    async with TestWeb(SiteSpec(hosts=2)) as web:
        url = web.url(0, "/delay/200")
        statuses = await asyncio.gather(*(_status(session, url) for _ in range(n)))
        assert statuses == [200] * n
        stats = web.stats()
        host = stats.hosts[0]
        assert host.requests == n
        assert 2 <= host.max_in_flight <= n
        assert host.in_flight == 0
        assert host.paths == {"/delay/200": n}
        assert stats.hosts[1].requests == 0
        assert stats.hosts[1].max_in_flight == 0
        assert stats.requests == n
        assert stats.max_in_flight == host.max_in_flight


async def test_sequential_requests_never_overlap(session: aiohttp.ClientSession) -> None:
    async with TestWeb(SiteSpec(pages=10)) as web:
        for n in range(5):
            assert await _status(session, web.url(0, f"/page/{n}")) == 200
        host = web.stats().hosts[0]
        assert host.requests == 5
        assert host.max_in_flight == 1
        assert host.min_start_gap is not None
        assert host.min_start_gap > 0
        assert [record.path for record in host.log] == [f"/page/{n}" for n in range(5)]
        for record in host.log:
            assert record.end is not None
            assert record.start <= record.end
            assert record.status == 200
        for earlier, later in zip(host.log, host.log[1:], strict=False):
            assert later.start - earlier.start >= host.min_start_gap


async def test_min_start_gap_reflects_spacing(session: aiohttp.ClientSession) -> None:
    async with TestWeb() as web:
        for _ in range(3):
            assert await _status(session, web.url(0, "/static/0")) == 200
            await asyncio.sleep(0.05)  # a deliberate pause between request starts
        gap = web.stats().hosts[0].min_start_gap
        assert gap is not None
        assert gap >= 0.05
        web.reset_stats()
        assert web.stats().hosts[0].min_start_gap is None


async def test_statuses_and_control_paths(session: aiohttp.ClientSession) -> None:
    spec = SiteSpec(pages=3)
    async with TestWeb(spec) as web:
        assert await _status(session, web.url(0, "/page/9")) == 404
        assert await _status(session, web.url(0, "/status/418")) == 418
        assert await _status(session, web.url(0, "/_testweb/stats")) == 200
        assert await _status(session, web.url(0, "/_testweb/info")) == 200
        log = web.stats().hosts[0].log
        assert [(r.path, r.status) for r in log] == [("/page/9", 404), ("/status/418", 418)]


async def test_reset_while_requests_are_in_flight(
    session: aiohttp.ClientSession,
    wait_until: WaitUntil,
) -> None:
    async with TestWeb() as web:
        slow = asyncio.ensure_future(_status(session, web.url(0, "/delay/300")))
        await wait_until(lambda: web.stats().in_flight == 1)
        web.reset_stats()
        stats = web.stats()
        assert stats.requests == 0
        assert stats.in_flight == 1
        assert stats.hosts[0].max_in_flight == 1
        assert await asyncio.wait_for(slow, 5) == 200
        await wait_until(lambda: web.stats().in_flight == 0)
        assert web.stats().hosts[0].log == ()


async def test_http_stats_round_trip(session: aiohttp.ClientSession) -> None:
    async with TestWeb(SiteSpec(hosts=2)) as web:
        for path in ("/", "/page/1", "/static/2"):
            assert await _status(session, web.url(1, path)) == 200
        async with session.get(web.url(0, "/_testweb/stats")) as response:
            summary = TestWebStats.from_json(await response.json())
        local = web.stats()
        assert summary.requests == local.requests == 3
        assert summary.hosts[1].paths == local.hosts[1].paths
        assert summary.hosts[1].min_start_gap == local.hosts[1].min_start_gap
        assert summary.hosts[1].log == ()
        async with session.get(web.url(0, "/_testweb/stats?log=1")) as response:
            full = TestWebStats.from_json(await response.json())
        assert full == local
        async with session.post(web.url(0, "/_testweb/reset")) as response:
            assert response.status == 200
        assert web.stats().requests == 0


async def test_record_false_keeps_counts_only(session: aiohttp.ClientSession) -> None:
    async with TestWeb(record=False) as web:
        for _ in range(3):
            assert await _status(session, web.url(0, "/static/1")) == 200
        host = web.stats().hosts[0]
        assert host.requests == 3
        assert host.max_in_flight == 1
        assert host.log == ()
        assert host.min_start_gap is None


def test_a_request_the_server_gets_to_late_is_dated_by_its_arrival() -> None:
    # A server kept off the CPU reads the requests that arrived meanwhile back to back; their
    # starts are when they arrived, not when it got to them, so that gaps between starts
    # are the client's.
    with TestWeb.run_in_thread(SiteSpec(hosts=1, pages=2)) as web:
        blocking, unblocked = threading.Event(), []

        def block() -> None:
            blocking.set()
            time.sleep(1.0)  # the server's loop is held here, as by a loaded machine
            unblocked.append(time.monotonic())

        holder = threading.Thread(target=lambda: web._on_loop(block))
        holder.start()
        assert blocking.wait(30)
        sent = time.monotonic()
        with urllib.request.urlopen(web.url(0, "/page/0"), timeout=30) as response:
            assert response.status == 200
        holder.join(30)
        [record] = web.stats().hosts[0].log
    assert sent <= record.start < unblocked[0]
