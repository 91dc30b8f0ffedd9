"""shoal's one exception tree.

::

    ShoalError
    ├── ConfigError(ValueError)           an option value is invalid
    │   └── JobConflict                   the job exists with other settings, or another
    │                                     command is running it
    ├── InputError(ValueError)            an input line is invalid (carries line number)
    ├── IllegalTransition(RuntimeError)   a URL lifecycle step the table forbids
    ├── StoreError                        the store cannot do what was asked
    │   ├── StoreUnavailable(ConnectionError)   cannot open / reach the store
    │   └── SchemaError                   foreign file, or schema newer than this code
    ├── FetchError                        transport failure (no usable response)
    │   ├── ConnectError(ConnectionError) refused, reset, unreachable
    │   │   └── DNSError                  the host name does not resolve
    │   ├── FetchTimeout(TimeoutError)    connect, read or total deadline passed
    │   ├── TLSError                      handshake or certificate failure
    │   └── ProtocolError                 the peer did not speak valid HTTP
    └── PolicyError                       shoal decided not to (finish) fetching
        ├── RobotsDisallowed              robots.txt forbids the URL
        ├── OutOfScope                    the URL is outside the crawl scope
        ├── TooLarge                      the body exceeds the byte cap
        ├── TooManyRedirects              the redirect chain is too long or loops
        └── RetriesExhausted              every allowed attempt failed

Every ``FetchError`` and ``PolicyError`` carries the URL and the stable,
machine-readable ``ErrorKind`` that the store records for it.
"""

from __future__ import annotations

from typing import ClassVar

from shoal.core.kinds import ErrorKind

__all__ = [
    "ConfigError",
    "ConnectError",
    "DNSError",
    "FetchError",
    "FetchTimeout",
    "IllegalTransition",
    "InputError",
    "JobConflict",
    "OutOfScope",
    "PolicyError",
    "ProtocolError",
    "RetriesExhausted",
    "RobotsDisallowed",
    "SchemaError",
    "ShoalError",
    "StoreError",
    "StoreUnavailable",
    "TLSError",
    "TooLarge",
    "TooManyRedirects",
]


class ShoalError(Exception):
    """Root of every error shoal raises on purpose."""


class ConfigError(ShoalError, ValueError):
    """An option has a value shoal cannot use."""


class JobConflict(ConfigError):
    """A job cannot run as asked: it was created with settings this run may not change, or
    another live command is running it."""


class InputError(ShoalError, ValueError):
    """An input line could not be turned into a request."""

    def __init__(self, message: str, *, line_no: int | None = None) -> None:
        self.line_no = line_no
        self.reason = message
        super().__init__(f"line {line_no}: {message}" if line_no is not None else message)


class IllegalTransition(ShoalError, RuntimeError):
    """A URL lifecycle transition that the lifecycle table does not allow."""


class StoreError(ShoalError):
    """The store failed to do what was asked."""


class StoreUnavailable(StoreError, ConnectionError):
    """The store cannot be opened or reached."""


class SchemaError(StoreError):
    """The store is not a shoal store, or was written by a newer shoal."""


class _UrlError(ShoalError):
    kind: ClassVar[ErrorKind]

    def __init__(self, url: str, message: str = "") -> None:
        self.url = url
        self.message = message or self.kind.value.replace("_", " ")
        super().__init__(f"{url}: {self.message}")


class FetchError(_UrlError):
    """The request got no usable HTTP response."""

    kind = ErrorKind.CONNECT_ERROR


class ConnectError(FetchError, ConnectionError):
    kind = ErrorKind.CONNECT_ERROR


class DNSError(ConnectError):
    kind = ErrorKind.DNS_ERROR


class FetchTimeout(FetchError, TimeoutError):
    kind = ErrorKind.TIMEOUT


class TLSError(FetchError):
    kind = ErrorKind.TLS_ERROR


class ProtocolError(FetchError):
    kind = ErrorKind.PROTOCOL_ERROR


class PolicyError(_UrlError):
    """shoal chose not to fetch, or not to finish fetching, the URL."""

    kind = ErrorKind.OUT_OF_SCOPE


class RobotsDisallowed(PolicyError):
    kind = ErrorKind.ROBOTS_DISALLOWED


class OutOfScope(PolicyError):
    kind = ErrorKind.OUT_OF_SCOPE


class TooLarge(PolicyError):
    kind = ErrorKind.TOO_LARGE


class TooManyRedirects(PolicyError):
    kind = ErrorKind.TOO_MANY_REDIRECTS


class RetriesExhausted(PolicyError):
    kind = ErrorKind.RETRIES_EXHAUSTED
