"""Every endpoint, through a real server on loopback and a real aiohttp client."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import Any
from xml.etree import ElementTree

import aiohttp
import pytest
from aiohttp import web
from selectolax.lexbor import LexborHTMLParser
from yarl import URL

from shoal.testweb import (
    STATE,
    PageRef,
    SiteSpec,
    TestWeb,
    index_links,
    is_error_page,
    page_links,
)

SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


WaitUntil = Callable[[Callable[[], bool]], Awaitable[None]]


async def _get(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, bytes]:
    async with session.get(url, **kwargs) as response:
        return response.status, await response.read()


def _resolved_hrefs(page_url: str, body: bytes) -> list[str]:
    tree = LexborHTMLParser(body)
    return [str(URL(page_url).join(URL(a.attributes["href"] or ""))) for a in tree.css("a[href]")]


async def test_pages_match_the_graph(session: aiohttp.ClientSession) -> None:
    spec = SiteSpec(hosts=3, pages=30, cross_host_links=0.3, seed=9)
    async with TestWeb(spec) as web:
        for host in range(3):
            refs = [PageRef(host, None), *(PageRef(host, n) for n in range(30))]
            for ref in refs:
                url = web.url(host, ref.path)
                async with session.get(url) as response:
                    assert response.status == 200
                    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
                    body = await response.read()
                if ref.page is None:
                    targets = index_links(spec, host)
                else:
                    targets = page_links(spec, host, ref.page)
                want = [web.url(t.host, t.path) for t in targets]
                assert _resolved_hrefs(url, body) == want


async def test_hosts_bind_distinct_addresses_on_one_port(session: aiohttp.ClientSession) -> None:
    async with TestWeb(SiteSpec(hosts=3, pages=5)) as web:
        assert web.port > 0
        assert web.base_urls == [f"http://127.0.0.{i}:{web.port}" for i in (2, 3, 4)]
        for host in range(3):
            async with session.get(web.url(host, "/_testweb/info")) as response:
                info = await response.json()
            assert info["host"] == host
            assert info["base_urls"] == web.base_urls
        assert (await _get(session, web.url(2, "/page/1")))[0] == 200
        stats = web.stats()
        assert [host.requests for host in stats.hosts] == [0, 0, 1]
        assert [host.address for host in stats.hosts] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


async def test_explicit_addresses_and_port(session: aiohttp.ClientSession) -> None:
    async with TestWeb(SiteSpec(hosts=2), addresses=["127.0.0.1", "127.0.0.9"]) as first:
        assert first.base_urls == [
            f"http://127.0.0.1:{first.port}",
            f"http://127.0.0.9:{first.port}",
        ]
        assert (await _get(session, first.url(1, "/")))[0] == 200
        with pytest.raises(OSError, match="cannot listen on 127.0.0.1"):
            await TestWeb(SiteSpec(hosts=1), addresses=["127.0.0.1"], port=first.port).start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    async with TestWeb(SiteSpec(hosts=1, first_address=7), port=free) as web:
        assert web.base_urls == [f"http://127.0.0.7:{free}"]
    with pytest.raises(ValueError, match="address"):
        TestWeb(SiteSpec(hosts=2), addresses=["127.0.0.1"])


async def test_page_errors_padding_and_404(session: aiohttp.ClientSession) -> None:
    spec = SiteSpec(pages=40, error_rate=0.3, page_bytes=3000)
    async with TestWeb(spec) as web:
        failing = next(n for n in range(40) if is_error_page(spec, 0, n))
        working = next(n for n in range(40) if not is_error_page(spec, 0, n))
        for _ in range(2):
            assert (await _get(session, web.url(0, f"/page/{failing}")))[0] == 500
        status, body = await _get(session, web.url(0, f"/page/{working}"))
        assert status == 200
        assert len(body) == 3000
        assert (await _get(session, web.url(0, "/page/40")))[0] == 404
        assert (await _get(session, web.url(0, "/page/x")))[0] == 404
        assert (await _get(session, web.url(0, "/nowhere")))[0] == 404


async def test_latency(session: aiohttp.ClientSession) -> None:
    async with TestWeb(SiteSpec(latency_ms=100)) as web:
        started = time.monotonic()
        assert (await _get(session, web.url(0, "/page/0")))[0] == 200
        assert time.monotonic() - started >= 0.09
        started = time.monotonic()
        assert (await _get(session, web.url(0, "/static/1")))[0] == 200
        assert time.monotonic() - started < 0.09


async def test_static_and_status(session: aiohttp.ClientSession) -> None:
    async with TestWeb() as web:
        async with session.get(web.url(0, "/static/17")) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            assert b"<a" not in await response.read()
        assert await _get(session, web.url(0, "/status/418")) == (418, b"status 418\n")
        assert await _get(session, web.url(0, "/status/204")) == (204, b"")
        assert (await _get(session, web.url(0, "/status/503")))[0] == 503
        assert (await _get(session, web.url(0, "/status/99")))[0] == 400


async def test_flaky_counts_per_host_and_key(session: aiohttp.ClientSession) -> None:
    async with TestWeb(SiteSpec(hosts=2)) as web:
        url = web.url(0, "/flaky/a?fail=2&code=502")
        assert [(await _get(session, url))[0] for _ in range(4)] == [502, 502, 200, 200]
        # Another key and another host count on their own.
        assert (await _get(session, web.url(0, "/flaky/b?fail=1")))[0] == 503
        assert (await _get(session, web.url(1, "/flaky/a?fail=2&code=502")))[0] == 502
        web.reset_stats()
        assert (await _get(session, url))[0] == 502
        async with session.post(web.url(1, "/_testweb/reset")) as response:
            assert response.status == 200
        assert (await _get(session, url))[0] == 502
        assert (await _get(session, web.url(0, "/flaky/c?fail=0")))[0] == 200
        assert (await _get(session, web.url(0, "/flaky/c?fail=x")))[0] == 400


async def test_retry_after_forms(session: aiohttp.ClientSession) -> None:
    async with TestWeb() as web:
        async with session.get(web.url(0, "/flaky/s?code=429&retry_after=7")) as response:
            assert response.status == 429
            assert response.headers["Retry-After"] == "7"
        async with session.get(web.url(0, "/flaky/d?code=503&retry_after=date:30")) as response:
            assert response.status == 503
            when = parsedate_to_datetime(response.headers["Retry-After"]).timestamp()
            assert 28 <= when - time.time() <= 31
        async with session.get(web.url(0, "/flaky/e?code=500&retry_after=7")) as response:
            assert response.status == 500
            assert "Retry-After" not in response.headers
        async with session.get(web.url(0, "/flaky/f?code=503")) as response:
            assert "Retry-After" not in response.headers
        assert (await _get(session, web.url(0, "/flaky/g?retry_after=soon")))[0] == 400


async def test_redirects(session: aiohttp.ClientSession) -> None:
    async with TestWeb() as web:
        async with session.get(web.url(0, "/redirect/3")) as response:
            assert response.status == 200
            assert response.url.path == "/page/0"
            assert [str(r.url.path) for r in response.history] == [
                "/redirect/3",
                "/redirect/2",
                "/redirect/1",
                "/redirect/0",
            ]
        async with session.get(web.url(0, "/redirect/1"), allow_redirects=False) as response:
            assert response.status == 302
            assert response.headers["Location"] == "/redirect/0"
        with pytest.raises(aiohttp.TooManyRedirects):
            async with session.get(web.url(0, "/redirect-loop"), max_redirects=5):
                pass
        target = web.url(0, "/static/1")
        async with session.get(
            web.url(0, "/redirect-to"),
            params={"url": target, "status": "301"},
            allow_redirects=False,
        ) as response:
            assert response.status == 301
            assert response.headers["Location"] == target
        assert (await _get(session, web.url(0, "/redirect-to")))[0] == 400
        assert (await _get(session, web.url(0, f"/redirect-to?url={target}&status=300")))[0] == 400


async def test_bytes_sizes_and_framing(session: aiohttp.ClientSession) -> None:
    async with TestWeb() as web:
        async with session.get(web.url(0, "/bytes/1000000")) as response:
            assert response.headers["Content-Type"] == "application/octet-stream"
            assert response.headers["Content-Length"] == "1000000"
            body = await response.read()
        assert len(body) == 1_000_000
        assert body[:4] == bytes([0, 1, 2, 3])
        async with session.get(web.url(0, "/bytes/300000?chunked=1")) as response:
            assert "Content-Length" not in response.headers
            assert response.headers["Transfer-Encoding"] == "chunked"
            assert len(await response.read()) == 300_000
        assert await _get(session, web.url(0, "/bytes/0")) == (200, b"")


async def test_bytes_are_streamed_not_built(session: aiohttp.ClientSession) -> None:
    size = 32 * 1024 * 1024
    async with TestWeb() as web:
        tracemalloc.start()
        try:
            received = 0
            async with session.get(web.url(0, f"/bytes/{size}")) as response:
                async for chunk in response.content.iter_chunked(256 * 1024):
                    received += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert received == size
    assert peak < 8 * 1024 * 1024


async def test_robots(session: aiohttp.ClientSession) -> None:
    async with TestWeb() as web:
        assert (await _get(session, web.url(0, "/robots.txt")))[0] == 404
    robots = "User-agent: *\nDisallow: /page/3\nCrawl-delay: 1\n"
    async with TestWeb(SiteSpec(hosts=2, robots=robots)) as web:
        async with session.get(web.url(1, "/robots.txt")) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            assert await response.text() == robots


async def test_sitemaps(session: aiohttp.ClientSession) -> None:
    async with TestWeb(SiteSpec(hosts=2, pages=12)) as web:
        status, body = await _get(session, web.url(1, "/sitemap.xml"))
        assert status == 200
        locs = [loc.text for loc in ElementTree.fromstring(body).iter(f"{SITEMAP_NS}loc")]
        assert set(locs) == web.expected_pages(host=1)
        status, index = await _get(session, web.url(1, "/sitemap_index.xml"))
        root = ElementTree.fromstring(index)
        assert root.tag == f"{SITEMAP_NS}sitemapindex"
        (gz_url,) = [loc.text for loc in root.iter(f"{SITEMAP_NS}loc")]
        assert gz_url == web.url(1, "/sitemap-1.xml.gz")
        async with session.get(gz_url, auto_decompress=False) as response:
            assert response.headers["Content-Type"] == "application/gzip"
            assert gzip.decompress(await response.read()) == body
    async with TestWeb(SiteSpec(sitemaps=False)) as web:
        for path in ("/sitemap.xml", "/sitemap_index.xml", "/sitemap-1.xml.gz"):
            assert (await _get(session, web.url(0, path)))[0] == 404


async def test_delay(session: aiohttp.ClientSession) -> None:
    async with TestWeb() as web:
        started = time.monotonic()
        assert (await _get(session, web.url(0, "/delay/150")))[0] == 200
        assert time.monotonic() - started >= 0.14


async def test_stall_headers_until_client_gives_up(
    session: aiohttp.ClientSession, wait_until: WaitUntil
) -> None:
    async with TestWeb() as web:
        with pytest.raises(asyncio.TimeoutError):
            await _get(session, web.url(0, "/stall"), timeout=aiohttp.ClientTimeout(total=0.3))
        # The server notices the client left and ends the handler.
        await wait_until(lambda: web.stats().in_flight == 0)
        assert web.stats().hosts[0].log[0].end is not None


async def test_stall_body_after_some_bytes(session: aiohttp.ClientSession) -> None:
    async with TestWeb() as web:
        timeout = aiohttp.ClientTimeout(total=5, sock_read=0.3)
        async with session.get(
            web.url(0, "/stall?phase=body&after=100"), timeout=timeout
        ) as response:
            assert response.status == 200
            assert await response.content.readexactly(100) == bytes(range(100))
            with pytest.raises(asyncio.TimeoutError):
                await response.content.read(1)


async def test_close_does_not_wait_for_stalled_handlers(
    session: aiohttp.ClientSession, wait_until: WaitUntil
) -> None:
    web = TestWeb()
    await web.start()
    try:
        headers = asyncio.ensure_future(_get(session, web.url(0, "/stall")))
        body = asyncio.ensure_future(_get(session, web.url(0, "/stall?phase=body&after=5")))
        delay = asyncio.ensure_future(_get(session, web.url(0, "/delay/60000")))
        await wait_until(lambda: web.stats().in_flight == 3)
    finally:
        started = time.monotonic()
        await web.close()
    assert time.monotonic() - started < 2
    for task in (headers, body, delay):
        async with asyncio.timeout(5):
            outcome = (await asyncio.gather(task, return_exceptions=True))[0]
        assert isinstance(outcome, aiohttp.ClientError | tuple)
    assert web.stats().in_flight == 0
    await web.close()  # closing twice is harmless


async def test_extra_routes_extend_the_table(session: aiohttp.ClientSession) -> None:
    zoo = web.RouteTableDef()

    @zoo.get("/zoo/host")
    async def which_host(request: web.Request) -> web.Response:
        state = request.app[STATE]
        return web.Response(text=state.addresses[state.host_of(request)])

    async with TestWeb(SiteSpec(hosts=2), extra_routes=zoo) as server:
        assert await _get(session, server.url(1, "/zoo/host")) == (200, b"127.0.0.3")
        assert server.stats().hosts[1].paths == {"/zoo/host": 1}


async def test_lifecycle_misuse_is_reported() -> None:
    server = TestWeb()
    with pytest.raises(RuntimeError, match="not started"):
        server.url(0, "/")
    async with server:
        with pytest.raises(RuntimeError, match="already started"):
            await server.start()
        with pytest.raises(IndexError):
            server.url(1, "/")
        assert server.url(0, "page/1").endswith("/page/1")
