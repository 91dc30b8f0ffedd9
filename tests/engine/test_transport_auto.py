"""The ``auto`` HTTP client: which client a run gets, and the head hyper refuses read again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shoal.core.config import AUTO_PYREQWEST_CONCURRENCY, CrawlConfig, Limits, Timeouts
from shoal.core.model import Request
from shoal.engine.clock import FakeClock
from shoal.engine.fetch.spacing import SendSpacing
from shoal.engine.fetch.transport import AutoTransport, client_for, fetch_in_turn, open_transport

PROXY = ("http://127.0.0.1:3128",)


@pytest.mark.parametrize(
    ("config", "client"),
    [
        (CrawlConfig(), "pyreqwest"),
        (CrawlConfig(limits=Limits(concurrency=AUTO_PYREQWEST_CONCURRENCY)), "pyreqwest"),
        (CrawlConfig(limits=Limits(concurrency=AUTO_PYREQWEST_CONCURRENCY + 1)), "aiohttp"),
        (CrawlConfig(limits=Limits(concurrency=10_000), http2=True), "pyreqwest"),
        (CrawlConfig(proxies=PROXY), "aiohttp"),
        (CrawlConfig(http="aiohttp"), "aiohttp"),
        (CrawlConfig(http="pyreqwest", limits=Limits(concurrency=10_000)), "pyreqwest"),
    ],
)
def test_auto_chooses_by_concurrency_proxies_and_http2(
    config: CrawlConfig, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert client_for(config) == client


def test_auto_is_aiohttp_when_the_proxy_environment_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:3128")
    assert client_for(CrawlConfig()) == "aiohttp"
    assert client_for(CrawlConfig(proxy_env=False)) == "pyreqwest"


CONTROL_BYTES = b"X-Control: a\x01b\x7fc\r\n"  # hyper refuses the head
LATIN1 = b"X-Latin1: caf\xe9\r\n"  # pyreqwest refuses a value that is not UTF-8


class ControlByteServer:
    """Answers every request with a head holding ``header``, which pyreqwest refuses and
    aiohttp keeps; counts the requests by method."""

    def __init__(self, clock: FakeClock | None = None, header: bytes = CONTROL_BYTES) -> None:
        self.seen: list[tuple[str, float]] = []
        self._clock = clock
        self._header = header
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            when = self._clock.monotonic() if self._clock is not None else 0.0
            self.seen.append((head.split(b" ", 1)[0].decode(), when))
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                + self._header
                + b"Content-Length: 2\r\nConnection: close\r\n\r\nok"
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @classmethod
    async def started(
        cls, clock: FakeClock | None = None, header: bytes = CONTROL_BYTES
    ) -> AsyncIterator[ControlByteServer]:
        server = cls(clock, header)
        listening = await asyncio.start_server(server._serve, "127.0.0.1", 0)
        port = listening.sockets[0].getsockname()[1]
        server.url = f"http://127.0.0.1:{port}/page"
        async with listening:
            yield server


@pytest.fixture
async def control_bytes() -> AsyncIterator[ControlByteServer]:
    async for server in ControlByteServer.started():
        yield server


CONFIG = CrawlConfig(timeouts=Timeouts(total=10, connect=5, read=5))


def request(url: str, method: str = "GET") -> Request:
    return Request(id=1, url=url, host="127.0.0.1", method=method)


async def test_a_refused_head_is_read_again_by_aiohttp(control_bytes: ControlByteServer) -> None:
    async with open_transport(CONFIG, keep_body=True) as transport:
        assert isinstance(transport, AutoTransport)
        attempt = await fetch_in_turn(transport, SendSpacing(), request(control_bytes.url), 0.0)
    result = attempt.result
    assert (result.status, result.error_kind) == (200, None), result.error
    assert dict(result.headers)["X-Control"].encode("latin-1") == b"a\x01b\x7fc"
    assert attempt.body == b"ok"
    assert [method for method, _ in control_bytes.seen] == ["GET", "GET"]


async def test_a_header_value_that_is_not_utf8_is_read_again_by_aiohttp() -> None:
    async for server in ControlByteServer.started(header=LATIN1):
        async with open_transport(CONFIG, keep_body=True) as transport:
            attempt = await fetch_in_turn(transport, SendSpacing(), request(server.url), 0.0)
        result = attempt.result
        assert (result.status, result.error_kind) == (200, None), result.error
        assert dict(result.headers)["X-Latin1"].encode("latin-1") == b"caf\xe9"
        assert [method for method, _ in server.seen] == ["GET", "GET"]


async def test_a_refused_post_is_not_sent_again(control_bytes: ControlByteServer) -> None:
    async with open_transport(CONFIG) as transport:
        post = request(control_bytes.url, "POST")
        attempt = await fetch_in_turn(transport, SendSpacing(), post, 0.0)
    assert (attempt.result.status, attempt.result.error_kind) == (None, "protocol_error")
    assert [method for method, _ in control_bytes.seen] == ["POST"]


async def test_the_second_reading_waits_for_the_hosts_turn() -> None:
    clock = FakeClock()
    async for server in ControlByteServer.started(clock):
        async with open_transport(CONFIG) as transport:
            spacing = SendSpacing(clock)
            attempt = await fetch_in_turn(transport, spacing, request(server.url), 2.0)
        assert attempt.result.status == 200
        (_, first), (_, second) = server.seen
        assert second - first >= 2.0
