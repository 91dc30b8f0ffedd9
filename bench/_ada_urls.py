"""``canonicalize`` with ada-url as the parser under shoal's normalisations (bench only).

``patch()`` replaces the WHATWG parser of ``shoal.core.urls`` (its slow path; the fast
path for already-canonical URLs stays) with one that asks ada-url and then applies
shoal's extras: escapes normalised (uppercase hex, unreserved characters decoded), the
fragment and an empty query dropped, host names no resolver can look up refused. It
exists to measure the swap (bench/canonicalize.py) and to run the URL tests against it
(``python bench/_ada_urls.py [--href]`` runs tests/core/test_urls.py patched).
"""

from __future__ import annotations

import sys
from pathlib import Path

import ada_url

from shoal.core import urls
from shoal.core.errors import InputError
from shoal.core.hostnames import parse_host

_DEFAULT_PORTS = {"http:": 80, "https:": 443}
_SHOAL_PARSE = urls._parse


def _parse(url: str, base: str | None) -> urls._Parts:
    try:
        parsed = ada_url.URL(url, base=base)
    except (ValueError, UnicodeEncodeError):
        # Refused, or not encodable for ada (a lone surrogate): rare, and shoal's own
        # parser says why in one line (or reads the surrogate as U+FFFD, as a browser).
        return _SHOAL_PARSE(url, base)
    scheme = parsed.protocol
    if scheme not in _DEFAULT_PORTS:
        raise InputError(f"unsupported scheme {scheme[:-1]!r}")
    host = parsed.hostname
    if not host:
        raise InputError("missing host")
    # ada has mapped and punycoded the host; shoal's host rules (labels) still apply.
    host = parse_host(host)
    userinfo = ""
    if parsed.username or parsed.password:
        userinfo = urls._encode_userinfo(parsed.username)
        if parsed.password:
            userinfo += ":" + urls._encode_userinfo(parsed.password)
        userinfo += "@"
    port = int(parsed.port) if parsed.port else None
    search = parsed.search
    query = urls._encode_query(search[1:]) or None if search else None
    return urls._Parts(scheme[:-1], userinfo, host, port, urls._encode_path(parsed.pathname), query)


_SHOAL_CANONICALIZE = urls.canonicalize


def _canonicalize_via_href(
    url: str,
    *,
    base: str | None = None,
    strip_params: urls.ParamFilter = (),
    sort_query: bool = False,
) -> str:
    """ada's href first (one call through cffi), then shoal's canonicalize on it: usually
    its fast path, else the component-wise parse above."""
    fast = urls._FAST.fullmatch(url)
    if fast is None or not urls._fast_ok(fast):
        try:
            url = ada_url.URL(url, base=base).href.partition("#")[0]
            base = None
        except (ValueError, UnicodeEncodeError):
            pass
    return _SHOAL_CANONICALIZE(url, base=base, strip_params=strip_params, sort_query=sort_query)


def patch(*, via_href: bool = False) -> None:
    urls._parse = _parse  # type: ignore[assignment]
    if via_href:
        urls.canonicalize = _canonicalize_via_href  # type: ignore[assignment]


if __name__ == "__main__":
    # bench/ holds a queue.py: keep it behind the standard library's.
    here = str(Path(__file__).resolve().parent)
    sys.path = [entry for entry in sys.path if entry != here] + [here]
    import pytest

    via_href = "--href" in sys.argv
    patch(via_href=via_href)
    root = Path(__file__).resolve().parent.parent
    args = [a for a in sys.argv[1:] if a != "--href"]
    tests = str(root / "tests/core/test_urls.py")
    sys.exit(pytest.main([tests, "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *args]))
