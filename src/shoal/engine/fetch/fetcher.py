"""One HTTP attempt for one request: stream the body under a cap, classify failures.

This is the per-page hot path. It awaits only the network, allocates one
result object, and never formats a log line for an ordinary outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import xxhash
from aiohttp.abc import ResolveResult
from aiohttp_socks import ProxyConnector
from yarl import URL

from shoal.core.config import CrawlConfig
from shoal.core.kinds import ErrorKind
from shoal.core.links import PageLinks
from shoal.core.model import FetchResult, Request
from shoal.core.pickling import pickled_by_values
from shoal.core.proxies import ProxyRotation, is_socks, redacted
from shoal.core.urls import split_userinfo
from shoal.engine.fetch.addressguard import public_only_socket
from shoal.engine.fetch.failures import map_exception
from shoal.engine.fetch.redirects import origin_bound_exchange
from shoal.engine.fetch.spacing import marks_sends, send_trace

__all__ = [
    "Attempt",
    "Fetcher",
    "SpecialUseResolver",
    "header_text",
    "make_session",
    "proxy_env_set",
    "wants_body",
]

log = logging.getLogger("shoal.engine.fetch.fetcher")

_hash = xxhash.xxh3_128_hexdigest
_PROXY_FAILURES = (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)
_YIELD_EVERY = 1 << 20  # bytes of body read between two turns given to the other tasks


@pickled_by_values
@dataclass(slots=True)
class Attempt:
    """One attempt's result plus what the retry decision needs from the response."""

    result: FetchResult
    body: bytes | None
    retry_after: str | None
    # What a fetch process did with the page already: read its links (then body may be
    # None), applied the job's extraction rules.
    links: PageLinks | None = None
    fields_done: bool = False
    # This attempt's failure took its proxy out of the rotation (counted in the stats).
    proxy_taken_out: bool = False

    @classmethod
    def failed(
        cls,
        request: Request,
        kind: ErrorKind,
        message: str,
        *,
        attempts: int,
        ttfb_ms: float | None,
        elapsed_ms: float,
    ) -> Attempt:
        """An attempt that got no usable response, as every transport records it (a
        failure shoal did not expect is logged with its traceback)."""
        if kind is ErrorKind.INTERNAL_ERROR:
            log.exception("unexpected error fetching %s", request.url)
        result = FetchResult(
            request_id=request.id,
            url=request.url,
            error_kind=kind,
            error=message,
            attempts=attempts,
            ttfb_ms=ttfb_ms,
            elapsed_ms=elapsed_ms,
            fetched_at=time.time(),
            depth=request.depth,
            parent_url=request.parent_url,
            method=request.method,
        )
        return cls(result, None, None)


def make_session(config: CrawlConfig, *, block_private: bool = False) -> aiohttp.ClientSession:
    """The one HTTP session a crawler's workers share. ``block_private``: connect only to
    public addresses (``shoal.engine.fetch.addressguard``)."""
    timeouts = config.timeouts
    pool = {
        "limit": config.limits.concurrency,
        "limit_per_host": 0,  # the scheduler enforces per-host limits itself
        "ssl": config.verify_tls,
        "enable_cleanup_closed": False,
    }
    connector: aiohttp.TCPConnector
    if config.proxies and is_socks(config.proxies[0]):
        # Every connection is a tunnel through the one SOCKS proxy (which may resolve).
        connector = ProxyConnector.from_url(config.proxies[0], **pool)
    else:
        connector = aiohttp.TCPConnector(
            ttl_dns_cache=300,
            resolver=SpecialUseResolver(),
            socket_factory=public_only_socket if block_private else None,
            **pool,  # type: ignore[arg-type]
        )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(
            total=timeouts.total,
            connect=timeouts.connect,
            sock_connect=timeouts.connect,
            sock_read=timeouts.read,
        ),
        headers={"User-Agent": config.user_agent},
        cookie_jar=aiohttp.DummyCookieJar(),  # cookies are the run's (engine.cookies)
        auto_decompress=True,
        raise_for_status=False,
        # The proxy environment variables, as curl and wget read them, unless proxies were
        # given or turned off; only when one is set, since aiohttp then looks the proxy up
        # in a thread for every request.
        trust_env=config.proxy_env and not config.proxies and proxy_env_set(),
        # With a delay, each request's turn at its host ends as it is written
        # (``engine.spacing``); without one, no request pays for the trace.
        trace_configs=[send_trace()] if config.politeness.delay > 0 else None,
    )


_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy"})


def proxy_env_set() -> bool:
    """Whether a proxy environment variable (``http_proxy`` and the like) is set."""
    return any(value and name.lower() in _PROXY_VARIABLES for name, value in os.environ.items())


def wants_body(config: CrawlConfig) -> bool:
    """Whether a run needs response bodies after the fetch (to save, parse or extract)."""
    return config.save_bodies or config.follow_links or config.extract is not None


class SpecialUseResolver(aiohttp.ThreadedResolver):
    """The system resolver, except for names RFC 6761 reserves as never resolving.

    A name under ``.invalid`` fails at once with a DNS error, as RFC 6761 §6.4
    asks of resolver libraries; getaddrinfo would send it to the configured
    name server. Everything else goes to getaddrinfo in a thread (aiohttp's
    ThreadedResolver, which has nothing to close).
    """

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        name = host.rstrip(".").lower()
        if name == "invalid" or name.endswith(".invalid"):
            raise socket.gaierror(
                socket.EAI_NONAME, f"{name} does not resolve (reserved .invalid name, RFC 6761)"
            )
        return await super().resolve(host, port, family)


class Fetcher:
    sends_in_turn = True  # aiohttp writes the request in the step that starts it

    def __init__(
        self, session: aiohttp.ClientSession, config: CrawlConfig, *, keep_body: bool | None = None
    ) -> None:
        self._session = session
        self._max_bytes = config.limits.max_bytes
        self._max_redirects = config.limits.max_redirects
        self._keep_body = keep_body if keep_body is not None else wants_body(config)
        # A crawl follows redirects as links (deduplicated, scoped, polite); a fetch follows
        # them here and records the chain.
        self._follow_redirects = self._max_redirects > 0 and not config.follow_links
        self._loop_time = asyncio.get_running_loop().time
        rotating = config.proxies and not is_socks(config.proxies[0])
        self._proxies = ProxyRotation(config.proxies) if rotating else None
        # What a result records of its proxy: the SOCKS one is the session's.
        self._shown = {p: redacted(p) for p in config.proxies}
        one = config.proxies[0] if config.proxies and not rotating else None
        self._session_proxy = None if one is None else self._shown[one]
        #: Whether the session ends a request's ``spacing.SENDING`` turn as it is written.
        self.marks_send = marks_sends(session)

    def _exchange(
        self, request: Request, proxy: str | None = None
    ) -> contextlib.AbstractAsyncContextManager[tuple[aiohttp.ClientResponse, tuple[str, ...]]]:
        """The response to ``request`` and the URLs that redirected to it. A request with
        headers of its own follows redirects hop by hop, its headers kept to its origin."""
        if request.headers and self._follow_redirects:
            return origin_bound_exchange(
                self._session, request, max_redirects=self._max_redirects, proxy=proxy
            )
        return self._plain_exchange(request, proxy)

    @contextlib.asynccontextmanager
    async def _plain_exchange(
        self, request: Request, proxy: str | None = None
    ) -> AsyncIterator[tuple[aiohttp.ClientResponse, tuple[str, ...]]]:
        # Request URLs are canonical (already percent-encoded): yarl need not re-encode.
        async with self._session.request(
            request.method,
            URL(request.url, encoded=True),
            headers=request.headers or None,
            data=request.body,
            allow_redirects=self._follow_redirects,
            max_redirects=self._max_redirects,
            proxy=proxy,
        ) as response:
            history = response.history
            yield response, tuple(_bare(str(r.url)) for r in history) if history else ()

    async def fetch(self, request: Request) -> Attempt:
        loop_time = self._loop_time
        started = loop_time()
        attempts = request.attempts + 1
        ttfb_ms: float | None = None
        proxies = self._proxies
        proxy = proxies.choose(started) if proxies is not None else None
        taken_out = False
        shown = self._session_proxy if proxy is None else self._shown[proxy]
        try:
            async with self._exchange(request, proxy) as (response, redirects):
                if proxies is not None and proxy is not None:
                    if response.status == 407:
                        taken_out = proxies.failed(proxy, loop_time())
                    else:
                        proxies.worked(proxy)
                ttfb_ms = (loop_time() - started) * 1000.0
                headers = response.headers
                error_kind: str | None = None
                error: str | None = None
                declared = response.content_length
                cap = self._max_bytes
                if declared is not None and declared > cap:
                    # Not a byte of it is read: ``bytes`` counts what arrived, the
                    # message keeps what was announced.
                    body = b""
                    size = 0
                    error_kind, error = ErrorKind.TOO_LARGE, f"Content-Length {declared} > {cap}"
                elif declared is not None and "Content-Encoding" not in headers:
                    # The parser stops at Content-Length, so this read is bounded by the cap;
                    # an encoded body could inflate past it and takes the capped path below.
                    body = await response.read()
                    size = len(body)
                else:
                    body, size = await _read_capped(response.content, cap)
                    if size > cap:
                        error_kind, error = ErrorKind.TOO_LARGE, f"body exceeds {cap} bytes"
                status = response.status
                result = FetchResult(
                    request_id=request.id,
                    url=request.url,
                    final_url=_bare(str(response.url)) if redirects else request.url,
                    redirects=redirects,
                    status=status,
                    error_kind=error_kind,
                    error=error,
                    headers=header_text(response.raw_headers),
                    content_type=_latin1(headers.get("Content-Type")),
                    bytes=size,
                    body_hash=_hash(body) if error_kind is None else None,
                    attempts=attempts,
                    ttfb_ms=ttfb_ms,
                    elapsed_ms=(loop_time() - started) * 1000.0,
                    fetched_at=time.time(),
                    depth=request.depth,
                    parent_url=request.parent_url,
                    method=request.method,
                    proxy=shown,
                    etag=_latin1(headers.get("ETag")),
                    last_modified=_latin1(headers.get("Last-Modified")),
                )
                retry_after = headers.get("Retry-After") if status >= 400 else None
                attempt = Attempt(result, body if self._keep_body else None, retry_after)
                attempt.proxy_taken_out = taken_out
                return attempt
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded outcome
            if proxy is not None and isinstance(exc, _PROXY_FAILURES):
                assert proxies is not None
                taken_out = proxies.failed(proxy, loop_time())
            kind, message = map_exception(exc)
            elapsed_ms = (loop_time() - started) * 1000.0
            failure = Attempt.failed(
                request, kind, message, attempts=attempts, ttfb_ms=ttfb_ms, elapsed_ms=elapsed_ms
            )
            failure.result.proxy = shown
            failure.proxy_taken_out = taken_out
            return failure


def header_text(raw: tuple[tuple[bytes, bytes], ...]) -> tuple[tuple[str, str], ...]:
    """Response headers as recorded: the server's bytes read as Latin-1, as HTTP defines
    field text, so every byte is kept and ``value.encode("latin-1")`` gives it back."""
    return tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)


def _bare(url: str) -> str:
    """``url`` without credentials a redirect put in it: they are never recorded."""
    return split_userinfo(url)[0] if "@" in url else url


def _latin1(value: str | None) -> str | None:
    """A header value aiohttp decoded (UTF-8, surrogateescape) as ``header_text`` has it."""
    if value is None or value.isascii():
        return value
    return value.encode("utf-8", "surrogateescape").decode("latin-1")


async def _read_capped(content: aiohttp.StreamReader, cap: int) -> tuple[bytes, int]:
    """Read the (decoded) body; stop as soon as it passes ``cap`` and report the size seen.

    Past the cap the body is b"" (never joined): an endless body or a decompression
    bomb costs at most ``cap`` plus one read of memory, and aiohttp inflates only
    as far as the reads ask for (it pauses the socket while its buffer is full).
    """
    first = await content.readany()
    if not first or content.at_eof():
        if len(first) > cap:
            return b"", len(first)
        return first, len(first)
    chunks = [first]
    size = len(first)
    next_yield = _YIELD_EVERY
    while size <= cap:
        if size >= next_yield:
            # readany() returns at once while aiohttp holds data, and for a compressed body
            # each read inflates the next part synchronously: without this, a bomb would be
            # inflated up to the cap in one step of the loop.
            await asyncio.sleep(0)
            next_yield = size + _YIELD_EVERY
        chunk = await content.readany()
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > cap:
        return b"", size
    return b"".join(chunks), size
