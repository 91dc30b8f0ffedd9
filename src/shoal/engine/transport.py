"""The seam under the fetcher: one HTTP attempt for one request, whatever client does it.

A transport sends a request with the run's timeouts, follows redirects when a
fetch (not a crawl) asks it to, streams the body under the byte cap, and
reports every failure as an ``ErrorKind`` in the attempt's result; it never
raises for what a server or the network did. ``CrawlConfig.http`` names the
client (``HTTP_CLIENTS``):

``aiohttp``
    ``engine.fetcher.Fetcher`` on an ``aiohttp.ClientSession`` (HTTP/1.1).
``pyreqwest``
    ``engine.transport_reqwest``: Rust's reqwest/hyper under asyncio, HTTP/1.1
    and, with ``CrawlConfig.http2``, HTTP/2 over TLS.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

import aiohttp

from shoal.core.config import CrawlConfig
from shoal.core.model import Request
from shoal.engine.fetcher import Attempt, Fetcher

__all__ = ["Transport", "open_transport"]


class Transport(Protocol):
    """What the fetch workers and the fetch processes call for each request."""

    #: Whether ``fetch`` ends the calling task's ``spacing.SENDING`` turn itself, as the
    #: request is written; if not, the turn ends just before ``fetch`` is called.
    marks_send: bool

    async def fetch(self, request: Request) -> Attempt:
        """One attempt: its result (status or ``ErrorKind``), and the body if kept."""
        ...


@contextlib.asynccontextmanager
async def open_transport(
    config: CrawlConfig,
    *,
    session: aiohttp.ClientSession | None = None,
    keep_body: bool | None = None,
) -> AsyncIterator[Transport]:
    """The transport ``config.http`` names, open for the duration of the block.

    An aiohttp transport uses ``session`` when one is given (the crawler's, which
    its robots gate shares), else a session of its own.
    """
    if config.http == "pyreqwest":
        from shoal.engine.transport_reqwest import ReqwestTransport

        async with ReqwestTransport.open(config, keep_body=keep_body) as transport:
            yield transport
        return
    if session is not None:
        yield Fetcher(session, config, keep_body=keep_body)
        return
    from shoal.engine.fetcher import make_session

    async with make_session(config) as own:
        yield Fetcher(own, config, keep_body=keep_body)
