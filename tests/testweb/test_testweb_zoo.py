"""The zoo serves what it says it serves: checked with plain sockets, ssl and zlib, not
with shoal's fetcher (tests/zoo checks how shoal copes)."""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import sys
import urllib.request
import zlib
from collections.abc import AsyncIterator

import aiohttp
import brotli
import pytest
import zstandard

from shoal.testweb import SiteSpec, TestWeb, Zoo, ZooOptions
from shoal.testweb._raw import RAW_PATHS
from shoal.testweb._zoo import CHARSET_VARIANTS, ZOO_PATHS, zoo_routes

MiB = 1 << 20


@pytest.fixture
async def zoo() -> AsyncIterator[Zoo]:
    options = ZooOptions(drip=0.05, gzip_mib=48, br_mib=16, zstd_mib=512)
    async with Zoo(SiteSpec(hosts=3, pages=5, first_address=220), options=options) as served:
        yield served


async def raw_exchange(
    url: str, path: str, *, limit: int = 1 << 20, quiet: float = 0.5, most: float = 3.0
) -> tuple[bytes, str]:
    """Send a GET for ``path`` to ``url``'s host; return what came back and how it ended:
    "eof", "reset", or "open" (nothing for ``quiet`` s, ``limit`` bytes, or ``most`` s)."""
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    received = bytearray()
    ending = "open"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + most
    try:
        while len(received) < limit and loop.time() < deadline:
            async with asyncio.timeout(quiet):
                chunk = await reader.read(65536)
            if not chunk:
                ending = "eof"
                break
            received += chunk
    except TimeoutError:
        pass
    except ConnectionResetError:
        ending = "reset"
    finally:
        writer.transport.abort()
    return bytes(received), ending


async def test_zoo_routes_serve_alone_beside_a_site() -> None:
    async with (
        TestWeb(SiteSpec(hosts=1, pages=3), extra_routes=zoo_routes()) as web,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(web.url(0, "/zoo/")) as response:
            index = await response.text()
        assert all(f'href="{path}"' in index for path in ZOO_PATHS)
        async with session.get(web.url(0, "/page/1")) as response:
            assert response.status == 200


async def test_catalogue_names_every_endpoint(zoo: Zoo) -> None:
    urls = zoo.urls
    assert {f"raw{path}" for path in RAW_PATHS} <= set(urls)
    assert {f"charset/{variant}" for variant in CHARSET_VARIANTS} <= set(urls)
    assert urls["tls"].startswith("https://127.0.0.224:")
    assert urls["refused"].startswith("http://127.0.0.225:")
    assert urls["dns"].startswith("http://unresolvable.invalid:")
    body, _ = await raw_exchange(zoo.index_url, "/zoo/")
    assert all(url in body.decode() for name, url in urls.items() if name != "index")


@pytest.mark.parametrize(("encoding", "wbits"), [("gzip", 31), ("deflate", 15)])
async def test_deflate_bombs_are_valid_streams_of_zeros(
    zoo: Zoo, encoding: str, wbits: int
) -> None:
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(zoo.urls[f"bomb/{encoding}"]) as response,
    ):
        assert response.headers["Content-Encoding"] == encoding
        compressed = await response.read()
    assert len(compressed) < 48 * MiB // 500
    inflater = zlib.decompressobj(wbits=wbits)
    size = 0
    while compressed:
        out = inflater.decompress(compressed, MiB)
        assert out.count(0) == len(out)
        size += len(out)
        compressed = inflater.unconsumed_tail
    assert inflater.eof and not inflater.unused_data  # the checksum (and length) check out
    assert size == 48 * MiB


@pytest.mark.parametrize(
    ("name", "mib", "most"), [("bomb/br", 16, 4096), ("bomb/zstd", 512, 64 * 1024)]
)
async def test_brotli_and_zstd_bombs_are_kilobytes(
    zoo: Zoo, name: str, mib: int, most: int
) -> None:
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(zoo.urls[name]) as response,
    ):
        compressed = await response.read()
    assert len(compressed) < most
    if name == "bomb/br":
        out = brotli.Decompressor().process(compressed)
        assert len(out) == mib * MiB
    else:
        reader = zstandard.ZstdDecompressor().stream_reader(compressed, read_across_frames=True)
        out = reader.read(16 * MiB)
    assert len(out) >= 16 * MiB and out.count(0) == len(out)


async def test_endless_and_dripping_bodies(zoo: Zoo) -> None:
    path = zoo.urls["endless"].split("/", 3)[3]
    body, ending = await raw_exchange(zoo.urls["endless"], "/" + path, limit=4 * MiB)
    assert len(body) >= 4 * MiB and ending == "open"
    body, ending = await raw_exchange(zoo.urls["drip"], "/zoo/drip", most=0.5)
    head, _, rest = body.partition(b"\r\n\r\n")
    assert b"Content-Length: 1000000" in head
    assert 1 <= len(rest) < 100 and ending == "open"  # a byte per 0.05 s for 0.5 s


@pytest.mark.parametrize(
    ("path", "starts", "ending"),
    [
        ("/bad-status-line", b"HTTP/1.1 OK\r\n", "eof"),
        ("/not-http", b"SSH-2.0-", "eof"),
        ("/malformed-header", b"HTTP/1.1 200 OK\r\n", "eof"),
        ("/reset-mid-body", b"HTTP/1.1 200 OK\r\n", "reset"),
        ("/reset-at-once", b"", "reset"),
        ("/close-at-once", b"", "eof"),
        ("/no-response", b"", "open"),
        ("/cl-short", b"HTTP/1.1 200 OK\r\n", "open"),
        ("/cl-long", b"HTTP/1.1 200 OK\r\n", "eof"),
        ("/chunked-truncated", b"HTTP/1.1 200 OK\r\n", "eof"),
        ("/http10-close", b"HTTP/1.0 200 OK\r\n", "eof"),
    ],
)
async def test_raw_behaviours(zoo: Zoo, path: str, starts: bytes, ending: str) -> None:
    body, ended = await raw_exchange(zoo.raw.base_url, path)
    assert body.startswith(starts) and ended == ending
    if path == "/reset-mid-body":
        assert b"Content-Length: 100000" in body and 4000 < len(body) < 100_000
    if path == "/cl-short":
        head, _, rest = body.partition(b"\r\n\r\n")
        assert b"Content-Length: 16" in head and len(rest) > 16


async def test_raw_headers(zoo: Zoo) -> None:
    body, _ = await raw_exchange(zoo.raw.base_url, "/non-ascii-headers")
    assert b"X-Latin1: caf\xe9\r\n" in body and b"X-High: \xff\xfe\x80\r\n" in body
    body, _ = await raw_exchange(zoo.raw.base_url, "/huge-header", limit=2 * MiB)
    assert len(body.partition(b"\r\n\r\n")[0]) > MiB
    body, _ = await raw_exchange(zoo.raw.base_url, "/many-headers", limit=2 * MiB)
    assert body.partition(b"\r\n\r\n")[0].count(b"\r\nX-Many-") == 10_000


async def test_drip_headers_sends_one_byte_at_a_time(zoo: Zoo) -> None:
    body, ending = await raw_exchange(zoo.raw.base_url, "/drip-headers", most=0.5)
    assert ending == "open" and 1 <= len(body) < 100 and b"HTTP/1.1 200 OK".startswith(body[:15])


async def test_tls_port_has_a_self_signed_certificate(zoo: Zoo) -> None:
    host, port = zoo.urls["tls"].split("//", 1)[1].rstrip("/").rsplit(":", 1)
    verifying = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError, match="self-signed"):
        await asyncio.open_connection(host, int(port), ssl=verifying)
    trusting = ssl.create_default_context()
    trusting.check_hostname = False
    trusting.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(host, int(port), ssl=trusting)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await reader.readline()).startswith(b"HTTP/1.1 200 OK")
    writer.close()


async def test_refused_port_refuses(zoo: Zoo) -> None:
    host, port = zoo.urls["refused"].split("//", 1)[1].rstrip("/").rsplit(":", 1)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(host, int(port))


async def test_random_5xx_is_the_same_in_every_run() -> None:
    async def statuses() -> list[int]:
        async with (
            TestWeb(SiteSpec(hosts=1), extra_routes=zoo_routes()) as web,
            aiohttp.ClientSession() as session,
        ):
            seen = []
            for _ in range(20):
                async with session.get(web.url(0, "/zoo/5xx/k?p=0.5")) as response:
                    seen.append(response.status)
            return seen

    first = await statuses()
    assert first == await statuses()
    assert 200 in first and set(first) - {200} <= {500, 502, 503, 504} and len(set(first)) > 1


async def test_calendar_never_runs_out_of_links() -> None:
    async with (
        TestWeb(SiteSpec(hosts=1), extra_routes=zoo_routes()) as web,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(web.url(0, "/zoo/calendar/9999/12")) as response:
            page = await response.text()
        assert "/zoo/calendar/10000/1" in page and "/zoo/calendar/9999/12/31" in page
        async with session.get(web.url(0, "/zoo/calendar/2024/2/29?view=week")) as response:
            page = await response.text()
        assert "/zoo/calendar/2024/3" in page and "view=agenda" in page


async def test_cli_serves_the_zoo() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shoal.testweb",
        "--zoo",
        "--first-address",
        "230",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        zoo_urls = ready["zoo"]
        assert ready["base_urls"][0] == f"http://127.0.0.230:{ready['port']}"
        body, _ = await raw_exchange(zoo_urls["ok"], "/zoo/ok")
        assert body.startswith(b"HTTP/1.1 200 OK")
        body, _ = await raw_exchange(zoo_urls["raw/bad-status-line"], "/bad-status-line")
        assert body.startswith(b"HTTP/1.1 OK")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_run_in_thread_serves_sync_callers() -> None:
    with Zoo.run_in_thread(SiteSpec(hosts=3, pages=2, first_address=240), tls=False) as zoo:
        assert "tls" not in zoo.urls
        with urllib.request.urlopen(zoo.urls["ok"], timeout=10) as response:
            assert response.status == 200
        with urllib.request.urlopen(zoo.urls["raw/http10-close"], timeout=10) as response:
            assert response.read().startswith(b"<!doctype html>")
