"""The other ways to run the server: its own thread, and a subprocess via the CLI."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import aiohttp
import pytest

import shoal.testweb
from shoal.testweb import SiteSpec, TestWeb


def _fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_run_in_thread_serves_sync_callers() -> None:
    with TestWeb.run_in_thread(SiteSpec(hosts=2, pages=5)) as web:
        status, body = _fetch(web.url(1, "/page/2"))
        assert status == 200
        assert b"host 1 page 2" in body
        assert _fetch(web.url(0, "/flaky/k?fail=1"))[0] == 503
        stats = web.stats()
        assert [host.requests for host in stats.hosts] == [1, 1]
        web.reset_stats()
        assert web.stats().requests == 0
        assert _fetch(web.url(0, "/flaky/k?fail=1"))[0] == 503
        url = web.url(0, "/")
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)
    assert web.stats().requests == 1  # still readable after the server stopped


def test_run_in_thread_raises_startup_errors() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(OSError, match="cannot listen"),
            TestWeb.run_in_thread(addresses=["127.0.0.1"], port=port),
        ):
            pass


async def test_run_in_thread_from_an_async_test(session: aiohttp.ClientSession) -> None:
    with TestWeb.run_in_thread() as web:
        async with session.get(web.url(0, "/delay/10")) as response:
            assert response.status == 200
        assert web.stats().hosts[0].requests == 1


@pytest.fixture
async def cli_server() -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shoal.testweb",
        "--hosts",
        "2",
        "--pages",
        "7",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_cli_subprocess(
    cli_server: asyncio.subprocess.Process, session: aiohttp.ClientSession, signum: int
) -> None:
    assert cli_server.stdout is not None
    line = await asyncio.wait_for(cli_server.stdout.readline(), 20)
    ready = json.loads(line)
    port = ready["port"]
    assert ready["base_urls"] == [f"http://127.0.0.2:{port}", f"http://127.0.0.3:{port}"]
    async with session.get(ready["base_urls"][1] + "/page/6") as response:
        assert response.status == 200
    async with session.get(ready["base_urls"][1] + "/page/7") as response:
        assert response.status == 404
    async with session.get(ready["base_urls"][0] + "/_testweb/stats") as response:
        stats = await response.json()
    assert [host["requests"] for host in stats["hosts"]] == [0, 2]
    cli_server.send_signal(signum)
    assert await asyncio.wait_for(cli_server.wait(), 20) == 0
    assert cli_server.stderr is not None
    assert await cli_server.stderr.read() == b""


async def test_cli_rejects_bad_options() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shoal.testweb",
        "--hosts",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert stdout == b""
    assert b"hosts must be" in stderr
    assert b"Traceback" not in stderr


def test_public_names() -> None:
    # The public API is chosen on purpose: adding or removing a name fails here first.
    names = shoal.testweb.__all__
    assert names == [
        "STATE",
        "HostStats",
        "PageRef",
        "RequestRecord",
        "SeenRequest",
        "ServerState",
        "SiteSpec",
        "TestWeb",
        "TestWebStats",
        "Zoo",
        "ZooOptions",
        "expected_pages",
        "index_links",
        "is_error_page",
        "links_from",
        "page_links",
        "reachable",
    ]
    assert all(hasattr(shoal.testweb, name) for name in names)
