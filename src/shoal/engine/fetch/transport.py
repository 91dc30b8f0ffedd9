"""The seam under the fetcher: one HTTP attempt for one request, whatever client does it.

A transport sends a request with the run's timeouts, follows redirects when a
fetch (not a crawl) asks it to, streams the body under the byte cap, and
reports every failure as an ``ErrorKind`` in the attempt's result; it never
raises for what a server or the network did. ``CrawlConfig.http`` names the
client (``HTTP_CLIENTS``):

``auto`` (the default)
    pyreqwest where it is the faster choice and its memory per connection is
    affordable, aiohttp otherwise (``client_for``). A response head pyreqwest
    refuses (a header value with control bytes, or not UTF-8) is read again by
    aiohttp, so that such a page is recorded as aiohttp records it.
``aiohttp``
    ``engine.fetcher.Fetcher`` on an ``aiohttp.ClientSession`` (HTTP/1.1).
``pyreqwest``
    ``engine.fetch.reqwest``: Rust's reqwest/hyper under asyncio, HTTP/1.1
    and, with ``CrawlConfig.http2``, HTTP/2 over TLS.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

import aiohttp

from shoal.core.config import AUTO_PYREQWEST_CONCURRENCY, CrawlConfig
from shoal.core.kinds import ErrorKind
from shoal.core.model import Request
from shoal.engine.fetch.fetcher import Attempt, Fetcher, make_session, proxy_env_set
from shoal.engine.fetch.spacing import SendSpacing, send_in_turn

__all__ = ["AutoTransport", "Transport", "client_for", "fetch_in_turn", "open_transport"]

# What pyreqwest says of a response head it will not read, where aiohttp's parser keeps it:
# hyper refuses control bytes in a header value, and pyreqwest a value that is not UTF-8.
_REFUSED_HEAD = ("invalid HTTP header parsed", "failed to convert header to a str")
_READ_AGAIN_METHODS = frozenset({"GET", "HEAD"})


class Transport(Protocol):
    """What the fetch workers and the fetch processes call for each request.

    ``sends_in_turn``: the request leaves in the same step of the event loop that
    starts it (aiohttp), or later, from another thread (pyreqwest's runtime), which a
    busy machine may delay past the next request's turn."""

    sends_in_turn: bool

    #: Whether ``fetch`` ends the calling task's ``spacing.SENDING`` turn itself, as the
    #: request is written; if not, the turn ends just before ``fetch`` is called.
    marks_send: bool

    async def fetch(self, request: Request) -> Attempt:
        """One attempt: its result (status or ``ErrorKind``), and the body if kept."""
        ...


def client_for(config: CrawlConfig) -> str:
    """The HTTP client a run of ``config`` uses: ``config.http``, unless that is ``auto``.

    ``auto`` is pyreqwest, which spends less CPU per page, where its memory per open
    connection is affordable: up to ``AUTO_PYREQWEST_CONCURRENCY`` connections, or with
    HTTP/2 asked for. It is aiohttp with more connections, and when requests go through
    a proxy (``--proxy``, or the proxy environment variables, which only the aiohttp
    transport reads).
    """
    if config.http != "auto":
        return config.http
    if config.http2:
        return "pyreqwest"
    if config.limits.concurrency > AUTO_PYREQWEST_CONCURRENCY or config.proxies:
        return "aiohttp"
    if config.proxy_env and proxy_env_set():
        return "aiohttp"
    return "pyreqwest"


class AutoTransport:
    """pyreqwest for every request, and aiohttp to read again a head pyreqwest refused.

    hyper refuses a whole response whose head has a header value with control bytes,
    and pyreqwest one with a header value that is not UTF-8 (Latin-1 text, say);
    aiohttp keeps such a value as it came. A GET or HEAD so refused is sent once more
    through aiohttp (``fetch_in_turn`` gives it a turn of its own in the host's
    spacing); another method's attempt stays the ``protocol_error`` hyper made of it,
    as sending it again could repeat what it did.
    """

    sends_in_turn = False
    marks_send = False  # pyreqwest writes requests where no hook of shoal's runs

    def __init__(self, fast: Transport, lenient: Transport) -> None:
        self._fast = fast
        self._lenient = lenient

    async def fetch(self, request: Request) -> Attempt:
        """The pyreqwest attempt (``fetch_in_turn`` reads a refused head again)."""
        return await self._fast.fetch(request)

    def refused(self, request: Request, attempt: Attempt) -> bool:
        """Whether ``attempt`` is a head hyper refused that aiohttp may read."""
        result = attempt.result
        return (
            result.error_kind == ErrorKind.PROTOCOL_ERROR
            and request.method in _READ_AGAIN_METHODS
            and any(refusal in (result.error or "") for refusal in _REFUSED_HEAD)
        )

    async def fetch_leniently(self, request: Request) -> Attempt:
        return await self._lenient.fetch(request)


async def fetch_in_turn(
    transport: Transport,
    spacing: SendSpacing,
    request: Request,
    gap: float,
    *,
    after: float = float("-inf"),
) -> Attempt:
    """One attempt at ``request``, sent in its host's turn (``gap`` seconds at least after
    the one before it, or after ``after`` when that one went from another sender); a
    head an ``AutoTransport`` refused is asked again in a turn of its own.

    A transport that ``marks_send`` ends the turn as the request is written. With one
    that sends from another thread, the time the request left is not known here: once
    its response began, the host's next turn counts from then (or from the end of an
    attempt that got no response), so that starts as the server sees them stay ``gap``
    apart however late that thread sent it."""
    turn = await spacing.take_turn(request.host, gap, after=after)
    clock = spacing.clock
    started = clock.monotonic()
    attempt = await send_in_turn(turn, transport.marks_send, lambda: transport.fetch(request))
    if gap > 0 and not transport.sends_in_turn:
        ttfb_ms = attempt.result.ttfb_ms
        answered = clock.monotonic() if ttfb_ms is None else started + ttfb_ms / 1000.0
        spacing.sent_by(request.host, answered)
    if isinstance(transport, AutoTransport) and transport.refused(request, attempt):
        again = await spacing.take_turn(request.host, gap)
        attempt = await send_in_turn(again, False, lambda: transport.fetch_leniently(request))
    return attempt


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
    client = client_for(config)
    async with contextlib.AsyncExitStack() as stack:
        if client == "aiohttp" or config.http == "auto":
            if session is None:
                session = await stack.enter_async_context(make_session(config))
            lenient = Fetcher(session, config, keep_body=keep_body)
            if client == "aiohttp":
                yield lenient
                return
        from shoal.engine.fetch.reqwest import ReqwestTransport

        fast = await stack.enter_async_context(ReqwestTransport.open(config, keep_body=keep_body))
        yield fast if config.http == "pyreqwest" else AutoTransport(fast, lenient)
