"""What every harness checks about a successful result (mirrors tests/core/test_fuzz.py)."""

from __future__ import annotations

from yarl import URL

from shoal.core.urls import (
    canonical_fingerprint,
    canonical_host,
    canonicalize,
    fingerprint,
    host_of,
)


def check_canonical(url: str) -> None:
    """ASCII, http(s), a fixed point of canonicalize, and fetchable by the HTTP layer."""
    assert url.isascii(), url
    assert url.startswith(("http://", "https://")), url
    assert not any(c <= " " or c == "\x7f" for c in url), url
    assert canonicalize(url) == url, url
    host = canonical_host(url)
    assert host == host_of(url), url
    assert host and host == host.lower(), url
    assert fingerprint(url) == canonical_fingerprint(url), url
    assert URL(url, encoded=True).scheme in ("http", "https"), url
    if not host.startswith("[") and not host.replace(".", "").isdigit():
        host.rstrip(".").encode("idna")  # what the socket layer does with the name
