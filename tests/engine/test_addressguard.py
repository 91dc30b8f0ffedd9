"""The connection-time address check: what it refuses, and how a refusal is recorded."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from shoal.core.config import CrawlConfig
from shoal.core.kinds import ErrorKind
from shoal.engine.fetch.addressguard import BlockedAddress, public_only_socket
from shoal.engine.fetch.failures import map_exception
from shoal.engine.fetch.fetcher import make_session
from shoal.testweb import SiteSpec, TestWeb


@pytest.mark.parametrize(
    ("family", "address"),
    [
        (socket.AF_INET, ("127.0.0.1", 80)),
        (socket.AF_INET, ("169.254.169.254", 80)),
        (socket.AF_INET6, ("::ffff:10.0.0.1", 80, 0, 0)),
        (socket.AF_INET6, ("fe80::1", 80, 0, 2)),
    ],
)
def test_a_socket_to_a_private_address_is_never_made(
    family: socket.AddressFamily, address: tuple[object, ...]
) -> None:
    with pytest.raises(BlockedAddress):
        public_only_socket((family, socket.SOCK_STREAM, 6, "", address))  # type: ignore[arg-type]


def test_a_socket_to_a_public_address_is_made_not_connected() -> None:
    sock = public_only_socket((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", 80)))
    try:
        assert sock.family == socket.AF_INET
    finally:
        sock.close()


async def test_a_blocked_connection_is_recorded_as_blocked_address_and_sends_nothing() -> None:
    async with TestWeb(SiteSpec(hosts=1, pages=3)) as web:
        port = web.url(0, "/").rsplit(":", 1)[1].rstrip("/")
        async with make_session(CrawlConfig(), block_private=True) as session:
            for url in (web.url(0, "/page/1"), f"http://localhost:{port}/page/1"):
                with pytest.raises(aiohttp.ClientError) as caught:
                    await session.get(url)
                kind, message = map_exception(caught.value)
                assert kind is ErrorKind.BLOCKED_ADDRESS, message
        async with make_session(CrawlConfig()) as session:  # the CLI's: no check
            async with session.get(web.url(0, "/page/1")) as response:
                assert response.status == 200
        assert sum(h.requests for h in web.stats().hosts) == 1
