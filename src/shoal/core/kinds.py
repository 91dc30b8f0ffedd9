"""The stable, machine-readable ``error_kind`` values recorded in the store.

These strings are a public contract: exports, dashboards and users' scripts
match on them. Add new kinds; never rename or reuse one. Each is recorded
somewhere, and ``docs/errors.md`` describes exactly these (a test checks both).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RETRYABLE_KINDS", "ErrorKind"]


class ErrorKind(StrEnum):
    # transport: no usable response
    DNS_ERROR = "dns_error"
    CONNECT_ERROR = "connect_error"
    CONNECTION_RESET = "connection_reset"
    CONNECT_TIMEOUT = "connect_timeout"
    READ_TIMEOUT = "read_timeout"
    TIMEOUT = "timeout"
    TLS_ERROR = "tls_error"
    CERTIFICATE_ERROR = "certificate_error"  # the server's certificate failed verification
    PROTOCOL_ERROR = "protocol_error"
    # policy: shoal chose not to (finish) fetching
    INVALID_URL = "invalid_url"
    UNSUPPORTED_SCHEME = "unsupported_scheme"
    TOO_LARGE = "too_large"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    INVALID_REDIRECT = "invalid_redirect"
    ROBOTS_DISALLOWED = "robots_disallowed"
    SITEMAP_MISSING = "sitemap_missing"  # a sitemap shoal looked for is not there
    HOST_ABANDONED = "host_abandoned"
    BLOCKED_ADDRESS = "blocked_address"  # a service's job may not reach that address
    INTERNAL_ERROR = "internal_error"


# Transport failures worth another attempt; policy outcomes never are.
RETRYABLE_KINDS: frozenset[ErrorKind] = frozenset(
    {
        ErrorKind.DNS_ERROR,
        ErrorKind.CONNECT_ERROR,
        ErrorKind.CONNECTION_RESET,
        ErrorKind.CONNECT_TIMEOUT,
        ErrorKind.READ_TIMEOUT,
        ErrorKind.TIMEOUT,
        ErrorKind.PROTOCOL_ERROR,
    }
)
