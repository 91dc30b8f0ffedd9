"""atheris harness: ``shoal.core.links.extract_links`` on arbitrary bodies.

The first byte picks the page URL, the content type, the charset label, an
X-Robots-Tag header and whether the body is repeated past the 16 KiB hazard screen;
the rest is the body. See README.md for how to run it.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from _checks import check_canonical

    from shoal.core.links import extract_links

PAGES = ["http://example.com/", "https://example.com/a/b/c?q=1", "http://127.0.0.1:8080/d/p.html"]
CONTENT_TYPES = [None, "text/html", "text/html; charset=utf-16", "application/xhtml+xml"]
ENCODINGS = [None, "cp1252", "shift_jis", "utf-7"]


def test_one(data: bytes) -> None:
    if not data:
        return
    choice, body = data[0], data[1:]
    headers = [("X-Robots-Tag", "otherbot: nofollow, noindex")] if choice & 0x10 else []
    if choice & 0x20:
        body *= 1 + (16 * 1024) // max(len(body), 1)
    result = extract_links(
        body,
        url=PAGES[choice % 3],
        content_type=CONTENT_TYPES[(choice >> 2) % 4],
        encoding=ENCODINGS[(choice >> 6) % 4],
        headers=headers,
    )
    check_canonical(result.base)
    assert len(set(result.links)) == len(result.links)
    for link in result.links:
        check_canonical(link)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one)
    atheris.Fuzz()
