"""Where a failed attempt's exception becomes what is recorded: an ``ErrorKind``.

The one place that knows the lower layers' exceptions (aiohttp, ssl, asyncio, the
OS): everything above it sees only the stable kinds of ``core.kinds``. Order matters:
aiohttp's classes inherit from one another and from ``OSError``, so the narrowest
come first.
"""

from __future__ import annotations

import errno
import ssl

import aiohttp
from aiohttp.http_exceptions import ContentLengthError, HttpProcessingError, TransferEncodingError
from aiohttp_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError

from shoal.core.kinds import ErrorKind
from shoal.engine.fetch.addressguard import is_blocked

__all__ = ["map_exception"]


def map_exception(exc: BaseException) -> tuple[ErrorKind, str]:
    """The stable ``ErrorKind`` of a failed attempt, and a one-line message. ``INTERNAL_ERROR``
    means a bug in shoal: the message names the exception."""
    message = _one_line(exc)
    if is_blocked(exc):
        return ErrorKind.BLOCKED_ADDRESS, message
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return ErrorKind.DNS_ERROR, message
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | ssl.SSLCertVerificationError):
        return ErrorKind.CERTIFICATE_ERROR, message
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return ErrorKind.TLS_ERROR, message
    if isinstance(exc, ProxyTimeoutError):  # a SOCKS proxy (aiohttp-socks's own classes)
        return ErrorKind.CONNECT_TIMEOUT, message or "SOCKS proxy timed out"
    if isinstance(exc, ProxyConnectionError | ProxyError):
        return ErrorKind.CONNECT_ERROR, message
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ErrorKind.CONNECT_TIMEOUT, message or "connect timed out"
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return ErrorKind.READ_TIMEOUT, message or "read timed out"
    if isinstance(exc, TimeoutError):
        return ErrorKind.TIMEOUT, message or "total timeout exceeded"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return ErrorKind.TOO_MANY_REDIRECTS, message or "too many redirects"
    if isinstance(exc, aiohttp.RedirectClientError):
        return ErrorKind.INVALID_REDIRECT, message
    if isinstance(exc, aiohttp.NonHttpUrlClientError):
        return ErrorKind.UNSUPPORTED_SCHEME, message
    if isinstance(exc, aiohttp.InvalidUrlClientError):
        return ErrorKind.INVALID_URL, message
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ErrorKind.CONNECT_ERROR, message
    if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError):
        return ErrorKind.CONNECTION_RESET, message or "server disconnected"
    if isinstance(exc, aiohttp.ClientOSError):
        if exc.errno in (errno.ECONNRESET, errno.EPIPE):
            return ErrorKind.CONNECTION_RESET, message
        return ErrorKind.CONNECT_ERROR, message
    if isinstance(exc, aiohttp.ClientPayloadError) and _ended_early(exc.__cause__):
        return ErrorKind.CONNECTION_RESET, message
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return ErrorKind.PROTOCOL_ERROR, message
    if isinstance(exc, HttpProcessingError):
        return ErrorKind.PROTOCOL_ERROR, message
    if isinstance(exc, aiohttp.ClientError | OSError):
        return ErrorKind.CONNECT_ERROR, message
    if isinstance(exc, UnicodeError | ValueError):
        return ErrorKind.PROTOCOL_ERROR, message
    return ErrorKind.INTERNAL_ERROR, f"{type(exc).__name__}: {message}"


def _ended_early(cause: BaseException | None) -> bool:
    """Whether a payload error means the connection ended (FIN or RST) before the body that
    Content-Length or chunked framing promised was complete, rather than bad framing.

    aiohttp raises ContentLengthError only at end of stream; its TransferEncodingError
    at end of stream says "Not enough data" (a bad chunk line says what was wrong).
    """
    if isinstance(cause, ContentLengthError):
        return True
    return isinstance(cause, TransferEncodingError) and cause.message.startswith("Not enough data")


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    text = " ".join(text.split())
    return text[:500]
