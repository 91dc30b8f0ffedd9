"""atheris harness: ``shoal.core.urls.canonicalize`` on arbitrary text, with or without a base.

The first byte picks the base URL and the query options; the rest, decoded as UTF-8 (with
lone surrogates allowed), is the URL. See README.md for how to run it.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from _checks import check_canonical

    from shoal.core.errors import InputError
    from shoal.core.urls import canonicalize

BASES = [None, "http://example.com/a/b?c", "https://[::1]:8443/x/", "http://xn--bcher-kva.de/"]
STRIP: list[tuple[str, ...]] = [(), ("utm_*",), ("a", "[")]


def test_one(data: bytes) -> None:
    if not data:
        return
    choice = data[0]
    base = BASES[choice % 4]
    strip = STRIP[(choice >> 2) % 3]
    sort_query = bool(choice & 0x40)
    try:
        url = data[1:].decode("utf-8", "surrogatepass" if choice & 0x80 else "replace")
    except UnicodeDecodeError:
        return  # not UTF-8 even with surrogates: nothing to parse
    try:
        result = canonicalize(url, base=base, strip_params=strip, sort_query=sort_query)
    except InputError:
        return
    check_canonical(result)
    assert canonicalize(result, strip_params=strip, sort_query=sort_query) == result


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one)
    atheris.Fuzz()
