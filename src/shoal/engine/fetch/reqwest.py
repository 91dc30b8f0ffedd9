"""The pyreqwest transport: Rust's reqwest and hyper do the HTTP, asyncio awaits them.

The connection pool, the HTTP/1.1 and HTTP/2 framing, TLS (rustls) and the
decompression run on pyreqwest's own runtime thread, off the event loop.
What shoal's policy decides stays here, in Python, so that every client
records the same outcome for the same server: redirects are followed one hop
at a time (the chain recorded, schemes other than http and https refused,
per-request headers not sent to another origin), the body is streamed under
the byte cap, and names under ``.invalid`` fail without a lookup.

A compressed body (``Content-Encoding`` gzip, deflate, br or zstd) arrives as
it was sent and is inflated here, under the cap, by the decoders aiohttp uses
(``aiohttp.compression_utils``), in the same steps: a bomb ends as
``too_large`` as it does with aiohttp, and the response's ``Content-Encoding``
and ``Content-Length`` are recorded as the server sent them.

Header names are recorded in their canonical spelling (``Content-Type``):
hyper keeps them in lower case, and the name's case carries no meaning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import xxhash
from aiohttp.compression_utils import BrotliDecompressor, ZLibDecompressor, ZSTDDecompressor
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import (
    BodyDecodeError,
    BuilderError,
    ConnectError,
    ConnectTimeoutError,
    DecodeError,
    NetworkError,
    PyreqwestError,
    ReadError,
    ReadTimeoutError,
    RequestTimeoutError,
)

from shoal.core.config import CrawlConfig
from shoal.core.kinds import ErrorKind
from shoal.core.model import FetchResult, Request
from shoal.core.urls import split_userinfo
from shoal.engine.fetch.failures import map_exception
from shoal.engine.fetch.fetcher import Attempt, wants_body

__all__ = ["ReqwestTransport", "classify_reqwest"]

log = logging.getLogger("shoal.engine.fetch.reqwest")

_hash = xxhash.xxh3_128_hexdigest
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HTTP_SCHEMES = frozenset({"http", "https"})
_YIELD_EVERY = 1 << 18  # bytes of body read between two turns given to the other tasks
_INFLATE_STEP = 1 << 18  # bytes inflated at most by one call of a decoder
# The encodings decoded, as aiohttp decodes them (one, not a list), and the Accept-Encoding
# it sends for them.
_DECODED = frozenset({"gzip", "deflate", "br", "zstd"})
_ACCEPT_ENCODING = "gzip, deflate, br, zstd"


class _Failure(Exception):
    """A failure decided here (not by the client), with its kind."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ReqwestTransport:
    """One pyreqwest client shared by a run's fetch workers (``Transport``)."""

    marks_send = False  # the client writes requests where no hook of shoal's runs
    sends_in_turn = False  # the request leaves from pyreqwest's runtime thread

    def __init__(self, client: Client, config: CrawlConfig, *, keep_body: bool | None) -> None:
        self._client = client
        self._max_bytes = config.limits.max_bytes
        self._max_redirects = config.limits.max_redirects
        self._total = config.timeouts.total
        self._keep_body = keep_body if keep_body is not None else wants_body(config)
        self._follow_redirects = self._max_redirects > 0 and not config.follow_links
        self._loop_time = asyncio.get_running_loop().time

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, config: CrawlConfig, *, keep_body: bool | None = None
    ) -> AsyncIterator[ReqwestTransport]:
        # Building loads the system's root certificates: a blocking step, done off the loop.
        client = await asyncio.to_thread(build_client, config)
        async with client:
            yield cls(client, config, keep_body=keep_body)

    async def fetch(self, request: Request) -> Attempt:
        loop_time = self._loop_time
        started = loop_time()
        attempts = request.attempts + 1
        timing: list[float] = []
        try:
            async with asyncio.timeout(self._total):
                return await self._attempt(request, started, attempts, timing)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded outcome
            kind, message = classify_reqwest(exc)
            return Attempt.failed(
                request,
                kind,
                message,
                attempts=attempts,
                ttfb_ms=(timing[0] - started) * 1000.0 if timing else None,
                elapsed_ms=(loop_time() - started) * 1000.0,
            )

    async def _attempt(
        self, request: Request, started: float, attempts: int, timing: list[float]
    ) -> Attempt:
        loop_time = self._loop_time
        url, method, body = request.url, request.method, request.body
        headers: tuple[tuple[str, str], ...] | None = request.headers or None
        origin = _origin(url) if headers else None  # needed only to keep headers to it
        history: list[str] = []
        while True:
            _refuse_invalid_name(url)
            builder = self._client.request(method, url)
            if headers:
                builder = builder.headers(headers)
            if body is not None:
                builder = builder.body_bytes(body)
            async with builder.build_streamed() as response:
                if not timing:
                    timing.append(loop_time())
                status = response.status
                location = response.get_header("location") if status in _REDIRECTS else None
                if location is not None and self._follow_redirects:
                    history.append(url)
                    if len(history) >= self._max_redirects:
                        raise _Failure(
                            ErrorKind.TOO_MANY_REDIRECTS,
                            f"{len(history)} redirects, the limit is {self._max_redirects}",
                        )
                    url = _redirect_target(url, location)
                    if (status == 303 and method != "HEAD") or (
                        status in (301, 302) and method == "POST"
                    ):
                        method, body = "GET", None
                    if headers and _origin(url) != origin:
                        headers = None  # a request's own headers are for its origin only
                    continue
                pairs = [(_canonical(k), v) for k, v in response.headers.items()]
                found = dict(pairs)
                if "Transfer-Encoding" in found and "Content-Length" in found:
                    # RFC 9112 §6.3: a message with both is a smuggling attempt or a broken
                    # server, and the body's end is not known for sure.
                    raise _Failure(
                        ErrorKind.PROTOCOL_ERROR,
                        "both Transfer-Encoding and Content-Length in the response",
                    )
                error_kind: str | None = None
                error: str | None = None
                cap = self._max_bytes
                declared = _content_length(found.get("Content-Length"))
                if declared is not None and declared > cap:
                    # Not a byte of it is read: ``bytes`` counts what arrived, the message
                    # keeps what was announced.
                    data, size = b"", 0
                    error_kind, error = ErrorKind.TOO_LARGE, f"Content-Length {declared} > {cap}"
                else:
                    encoding = found.get("Content-Encoding")
                    encoding = encoding.strip().lower() if encoding else None
                    if encoding in _DECODED and method != "HEAD":
                        data, size = await _read_decoded(response.body_reader, encoding, cap)
                    else:
                        data, size = await _read_capped(response.body_reader, cap)
                    if size > cap:
                        error_kind, error = ErrorKind.TOO_LARGE, f"body exceeds {cap} bytes"
                result = FetchResult(
                    request_id=request.id,
                    url=request.url,
                    final_url=_bare(url),
                    redirects=tuple(_bare(hop) for hop in history),
                    status=status,
                    error_kind=error_kind,
                    error=error,
                    headers=tuple(pairs),
                    content_type=found.get("Content-Type"),
                    bytes=size,
                    body_hash=_hash(data) if error_kind is None else None,
                    attempts=attempts,
                    ttfb_ms=(timing[0] - started) * 1000.0,
                    elapsed_ms=(loop_time() - started) * 1000.0,
                    fetched_at=time.time(),
                    depth=request.depth,
                    parent_url=request.parent_url,
                    method=request.method,
                    etag=found.get(_ETAG),
                    last_modified=found.get("Last-Modified"),
                )
                retry_after = found.get("Retry-After") if status >= 400 else None
                return Attempt(result, data if self._keep_body else None, retry_after)


def build_client(config: CrawlConfig) -> Client:
    """The run's one client: its pool, timeouts, TLS and decoding set from ``config``."""
    timeouts = config.timeouts
    builder = (
        ClientBuilder()
        .max_connections(config.limits.concurrency)
        .user_agent(config.user_agent)
        .default_cookie_store(False)
        .follow_redirects(False)
        .referer(False)
        .no_proxy()
        # Bodies arrive as sent: ``_read_decoded`` inflates them under the cap.
        .gzip(False)
        .deflate(False)
        .brotli(False)
        .zstd(False)
        .default_headers({"Accept-Encoding": _ACCEPT_ENCODING})
        .connect_timeout(timedelta(seconds=timeouts.connect))
        .read_timeout(timedelta(seconds=timeouts.read))
        .pool_timeout(timedelta(seconds=timeouts.total))
        .danger_accept_invalid_certs(not config.verify_tls)
    )
    builder = builder.http2(True) if config.http2 else builder.http1_only()
    return builder.build()


async def _read_capped(reader: Any, cap: int) -> tuple[bytes, int]:
    """Read the (decoded) body; stop as soon as it passes ``cap`` and report the size seen.

    Past the cap the body is b"" (never joined). reqwest inflates a compressed body
    on its own thread, one chunk per read: a bomb costs at most ``cap`` plus a chunk.
    """
    chunks: list[Any] = []
    size = 0
    next_yield = _YIELD_EVERY
    while size <= cap:
        if size >= next_yield:
            # A read of data already buffered returns without suspending: without this,
            # a large or inflating body would be read up to the cap in one step of the loop.
            await asyncio.sleep(0)
            next_yield = size + _YIELD_EVERY
        chunk = await reader.read_chunk()
        if chunk is None:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > cap:
        return b"", size
    return b"".join(chunks), size


async def _read_decoded(reader: Any, encoding: str, cap: int) -> tuple[bytes, int]:
    """Read a compressed body and inflate it; stop as soon as it passes ``cap`` and report
    the size seen, as ``_read_capped`` does for the bytes as sent.

    Each call of the decoder inflates ``_INFLATE_STEP`` bytes at most, and what one
    chunk holds is drained in such steps, with a turn given to the other tasks every
    ``_YIELD_EVERY`` bytes: a bomb costs at most ``cap`` plus one step of memory.
    """
    decoder: ZLibDecompressor | BrotliDecompressor | ZSTDDecompressor | None = None
    chunks: list[bytes] = []
    size = 0
    next_yield = _YIELD_EVERY
    while size <= cap:
        raw = await reader.read_chunk()
        if raw is None:
            break
        if not raw:
            continue
        if decoder is None:
            decoder = _decoder(encoding, bytes(raw[:1]))
        out = _inflate(decoder, encoding, raw)
        while True:
            if out:
                chunks.append(out)
                size += len(out)
            if size > cap or not decoder.data_available:
                break
            if size >= next_yield:
                await asyncio.sleep(0)
                next_yield = size + _YIELD_EVERY
            out = _inflate(decoder, encoding, b"")
        if size >= next_yield:
            await asyncio.sleep(0)
            next_yield = size + _YIELD_EVERY
    if size > cap:
        return b"", size
    if isinstance(decoder, ZLibDecompressor) and encoding == "deflate" and not decoder.eof:
        raise _Failure(ErrorKind.PROTOCOL_ERROR, "Can not decode content-encoding: deflate")
    return b"".join(chunks), size


def _decoder(
    encoding: str, first: bytes
) -> ZLibDecompressor | BrotliDecompressor | ZSTDDecompressor:
    """aiohttp's decoder for ``encoding``; ``deflate`` without its zlib header (RFC 1950)
    is read as raw deflate, as browsers and aiohttp read it."""
    if encoding == "br":
        return BrotliDecompressor()
    if encoding == "zstd":
        return ZSTDDecompressor()
    raw_deflate = encoding == "deflate" and first[0] & 0xF != 8
    return ZLibDecompressor(encoding=encoding, suppress_deflate_header=raw_deflate)


def _inflate(
    decoder: ZLibDecompressor | BrotliDecompressor | ZSTDDecompressor, encoding: str, data: Any
) -> bytes:
    try:
        return decoder.decompress_sync(data, _INFLATE_STEP)
    except Exception as exc:  # noqa: BLE001 - each library raises its own error
        raise _Failure(
            ErrorKind.PROTOCOL_ERROR, f"Can not decode content-encoding: {encoding}"
        ) from exc


def _bare(url: str) -> str:
    """``url`` without credentials a redirect put in it: they are never recorded."""
    return split_userinfo(url)[0] if "@" in url else url


def _refuse_invalid_name(url: str) -> None:
    """RFC 6761 §6.4: a name under ``.invalid`` never resolves; say so without a lookup."""
    if "invalid" not in url.lower():
        return  # the common case, without parsing the URL
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "invalid" or host.endswith(".invalid"):
        raise _Failure(
            ErrorKind.DNS_ERROR, f"{host} does not resolve (reserved .invalid name, RFC 6761)"
        )


def _redirect_target(url: str, location: str) -> str:
    try:
        target = urljoin(url, location.strip())
        parts = urlsplit(target)
        scheme = parts.scheme.lower()
        if scheme in _HTTP_SCHEMES:
            if not parts.hostname:
                raise ValueError("no host")
            return target
    except ValueError as exc:
        raise _Failure(
            ErrorKind.INVALID_REDIRECT, f"{location}: redirect to an invalid URL ({exc})"
        ) from exc
    raise _Failure(ErrorKind.INVALID_REDIRECT, f"{location}: redirect to a non-HTTP URL")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or ""), port if port is not None else default


def _content_length(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    return int(value)


_CANONICAL: dict[str, str] = {}
_ETAG = "Etag"  # how _canonical spells the name the client gives as "etag"


def _canonical(name: str) -> str:
    """``content-type`` as ``Content-Type`` (names repeat: each is spelled once)."""
    spelled = _CANONICAL.get(name)
    if spelled is None:
        spelled = "-".join(part[:1].upper() + part[1:] for part in name.split("-"))
        if len(_CANONICAL) < 4096:
            _CANONICAL[name] = spelled
    return spelled


def classify_reqwest(exc: BaseException) -> tuple[ErrorKind, str]:
    """Map a failure of one pyreqwest attempt to its ``ErrorKind`` and a one-line message."""
    if isinstance(exc, _Failure):
        return exc.kind, str(exc)
    if not isinstance(exc, PyreqwestError):
        return map_exception(exc)
    message = _message(exc)
    lowered = message.lower()
    if isinstance(exc, ConnectTimeoutError):
        # reqwest says "connection timeout" for a read timeout while waiting for the
        # response head too; only a timeout of the connector's own step names it.
        if "client error (connect)" in lowered:
            return ErrorKind.CONNECT_TIMEOUT, message
        return ErrorKind.READ_TIMEOUT, message
    if isinstance(exc, ReadTimeoutError):
        return ErrorKind.READ_TIMEOUT, message
    if isinstance(exc, RequestTimeoutError):
        return ErrorKind.TIMEOUT, message
    if _ended_early(lowered):
        return ErrorKind.CONNECTION_RESET, message
    if isinstance(exc, ConnectError):
        if "dns error" in lowered or "failed to lookup address" in lowered:
            return ErrorKind.DNS_ERROR, message
        if "certificate" in lowered or "unknownissuer" in lowered:
            return ErrorKind.CERTIFICATE_ERROR, message
        if "tls" in lowered or "handshake" in lowered or "ssl" in lowered:
            return ErrorKind.TLS_ERROR, message
        return ErrorKind.CONNECT_ERROR, message
    if isinstance(exc, BodyDecodeError | DecodeError):
        return ErrorKind.PROTOCOL_ERROR, message
    if isinstance(exc, ReadError | NetworkError):
        return ErrorKind.CONNECTION_RESET, message
    if isinstance(exc, BuilderError):
        return ErrorKind.INVALID_URL, message
    return ErrorKind.PROTOCOL_ERROR, message


def _ended_early(lowered: str) -> bool:
    """Whether the connection ended (FIN or RST) before the response, or before the body
    its framing promised, was complete (rather than the bytes being wrong)."""
    return (
        "end of file before message length reached" in lowered
        or "connection closed before message completed" in lowered
        or "connection reset by peer" in lowered
        or "broken pipe" in lowered
    )


def _message(exc: PyreqwestError) -> str:
    """The error and its causes on one line (reqwest's own message names only the step)."""
    parts = [exc.message]
    details = getattr(exc, "details", None) or {}
    for cause in details.get("causes") or ():
        text = str(cause.get("message", "")) if isinstance(cause, dict) else str(cause)
        if text and text not in parts:
            parts.append(text)
    text = " ".join(": ".join(parts).split())
    return text[:500]
