"""A compressed body as every HTTP client records it: inflated, hashed and sized alike,
its Content-Encoding and Content-Length kept as the server sent them."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator

import brotli
import pytest
from aiohttp import web
from backports import zstd

from shoal.core.config import HTTP_CLIENTS, CrawlConfig, Timeouts
from shoal.core.model import Request
from shoal.engine.fetch.spacing import SendSpacing
from shoal.engine.fetch.transport import fetch_in_turn, open_transport

BODY = b"<!doctype html><title>decoded</title>" + b"<p>the same words again</p>" * 4000


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


ENCODED = {
    "gzip": gzip.compress(BODY),
    "deflate": zlib.compress(BODY),  # zlib-wrapped, as RFC 9110 says
    "raw-deflate": _raw_deflate(BODY),  # sent as "deflate" by servers that get it wrong
    "br": brotli.compress(BODY),
    "zstd": zstd.compress(BODY),
}


@pytest.fixture
async def encoded_site() -> AsyncIterator[str]:
    async def page(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return web.Response(
            body=ENCODED[name],
            headers={
                "Content-Type": "text/html",
                "Content-Encoding": "deflate" if name == "raw-deflate" else name,
            },
        )

    app = web.Application()
    app.router.add_get("/{name}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("http", HTTP_CLIENTS)
@pytest.mark.parametrize("name", sorted(ENCODED))
async def test_a_compressed_body_is_recorded_alike(encoded_site: str, http: str, name: str) -> None:
    config = CrawlConfig(timeouts=Timeouts(total=10, connect=5, read=5), http=http)
    url = f"{encoded_site}/{name}"
    async with open_transport(config, keep_body=True) as transport:
        attempt = await fetch_in_turn(
            transport, SendSpacing(), Request(id=1, url=url, host="127.0.0.1"), 0.0
        )
    result = attempt.result
    assert (result.status, result.error_kind) == (200, None), result.error
    assert attempt.body == BODY
    assert result.bytes == len(BODY)
    headers = {name.lower(): value for name, value in result.headers}
    assert headers["content-encoding"] == ("deflate" if name == "raw-deflate" else name)
    assert headers["content-length"] == str(len(ENCODED[name]))
