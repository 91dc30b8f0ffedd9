"""Property fuzzing of the three parsers that take untrusted text: URL canonicalization,
link extraction and the ``shoal fetch`` input lines.

Each property feeds arbitrary (and deliberately nasty) input and checks two things:
only the documented error type comes out (``InputError``; ``extract_links`` raises it
only for a bad page URL, never because of the body), and what comes back is well formed
(canonical, idempotent, fetchable by the HTTP layer). The per-example deadline bounds
the time one input may take; it is generous, so only super-linear behaviour trips it on
a busy machine. Examples are derandomized: the same cases every run. The atheris
harnesses in ``fuzz/`` explore the same targets at random for longer.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from yarl import URL

from shoal.core.errors import InputError
from shoal.core.inputs import MAX_LINE_BYTES, parse_line, parse_lines, sniff_binary
from shoal.core.links import extract_links
from shoal.core.model import NewRequest
from shoal.core.urls import (
    canonical_fingerprint,
    canonical_host,
    canonicalize,
    fingerprint,
    host_of,
)

FUZZ = settings(max_examples=600, deadline=timedelta(seconds=2), derandomize=True)
SLOW_FUZZ = settings(max_examples=150, deadline=timedelta(seconds=5), derandomize=True)

# --- URL pieces: each list holds spellings that reach a different branch of the parser ---

SCHEMES = st.sampled_from(
    ["http", "https", "HTTP", "hTtPs", "ftp", "javascript", "file", "h", "http+x", "", "1http"]
)
SEPARATORS = st.sampled_from(["://", ":/", ":", ":\\\\", ":///", "://\\", " :// ", ""])
USERINFO = st.sampled_from(["", "user@", "u:p@", ":@", "@", "a@b@", "%zz@", "é:ü@", "u:@", ":p@"])
HOSTS = st.one_of(
    st.sampled_from(
        [
            "example.com",
            "EXAMPLE.com.",
            "a..b",
            ".a",
            "a.",
            "..",
            "xn--bcher-kva.de",
            "xn--",
            "xn--zz",
            "xn--a.com",
            "bücher.de",
            "ß.de",
            "☃.net",
            "１２７.０.０.１",
            "0x7f.1",
            "2130706433",
            "127.0.0.1",
            "256.1.1.1",
            "1.2.3.4.5",
            "0..1",
            "09",
            "08.1",
            "0x",
            "[::1]",
            "[::ffff:1.2.3.4]",
            "[1:2:3:4:5:6:7:8:9]",
            "[",
            "]",
            "[::1%25eth0]",
            "%41.com",
            "%zz.com",
            "a%2eb",
            "%E2%98%83.net",
            "%ff.com",
            "",
            " ",
            "\u200d.com",
            "\u0301a.com",
            "a" * 63 + ".com",
            "a" * 64 + ".com",
            "ａｂｃ.com",
            "ℌ.com",
            "\ufffd.com",
            "a_b.com",
            "a b.com",
            "a<b.com",
            "\ud800.com",
            "%41\udf0e.com",
        ]
    ),
    st.text(max_size=12),
    st.from_regex(r"[a-zA-Z0-9.\-]{0,20}", fullmatch=True),
)
PORTS = st.one_of(
    st.sampled_from(
        ["", ":", ":80", ":443", ":0", ":65535", ":65536", ":99999999999999999999", ":-1", ":８０"]
    ),
    st.integers(0, 70_000).map(lambda port: f":{port}"),
)
PIECES = st.sampled_from(
    [
        "/",
        "\\",
        "..",
        ".",
        "%2e",
        "%2E%2e",
        "%",
        "%%41",
        "%41",
        "%4",
        "%zz",
        "%00",
        "é",
        "\ud800",
        "\udfff",
        " ",
        "\t",
        "\n",
        "\r",
        "\x00",
        "\x7f",
        "a",
        "b",
        "?",
        "#",
        "&",
        "=",
        ";",
        "^",
        "`",
        "{",
        "}",
        "|",
        "<",
        ">",
        '"',
        "'",
        "+",
        "//",
        "utm_source=1",
        "a=1",
    ]
)
TAILS = st.lists(st.one_of(PIECES, st.text(max_size=3)), max_size=14).map("".join)
PREFIXES = st.sampled_from(["", " ", "\t", "\x00", "\x1f", "\ufeff", "\u3000"])

STRUCTURED_URLS = st.builds(
    lambda lead, scheme, sep, user, host, port, tail: (
        f"{lead}{scheme}{sep}{user}{host}{port}{tail}"
    ),
    PREFIXES,
    SCHEMES,
    SEPARATORS,
    USERINFO,
    HOSTS,
    PORTS,
    TAILS,
)
ANY_URL_TEXT = st.one_of(STRUCTURED_URLS, st.text(max_size=60), TAILS)
STRIP = st.sampled_from([(), ("utm_*",), ("a", "?"), ("*",), ("[",)])

VALID_BASES = [
    "http://example.com/",
    "https://example.com/a/b/c?q=1",
    "http://127.0.0.1:8080/dir/page.html",
    "https://xn--bcher-kva.de/%C3%A9/",
    "http://[::1]/x/../y",
]


def check_canonical(url: str) -> None:
    """What every canonical URL is: ASCII, http(s), a fixed point, fetchable."""
    assert url.isascii(), url
    assert url.startswith(("http://", "https://")), url
    assert not any(c <= " " or c == "\x7f" for c in url), url
    assert canonicalize(url) == url, url
    host = canonical_host(url)
    assert host == host_of(url)
    assert host and host == host.lower()
    assert fingerprint(url) == canonical_fingerprint(url)
    # What the fetcher does with it: yarl must take it as is, the socket layer must be
    # able to encode the host name (an empty or over-long label fails there).
    parsed = URL(url, encoded=True)
    assert parsed.scheme in ("http", "https")
    if not host.startswith("[") and not host.replace(".", "").isdigit():
        host.rstrip(".").encode("idna")


# --- URL canonicalization ---


@FUZZ
@given(ANY_URL_TEXT, st.one_of(st.none(), st.sampled_from(VALID_BASES), ANY_URL_TEXT))
@example("http://a..b/", None)
@example("http://" + "a" * 64 + ".com/", None)
@example("http://./", None)
@example("http://foo.09..", None)
@example("http://\udf0e%41/", None)  # a lone surrogate in a host with an escape
def test_canonicalize_raises_only_input_error(url: str, base: str | None) -> None:
    try:
        result = canonicalize(url, base=base)
    except InputError as error:
        assert str(error) and "\n" not in str(error)
        return
    check_canonical(result)


@FUZZ
@given(STRUCTURED_URLS, STRIP, st.booleans())
def test_canonicalize_with_query_options_is_idempotent(
    url: str, strip: tuple[str, ...], sort_query: bool
) -> None:
    try:
        once = canonicalize(url, strip_params=strip, sort_query=sort_query)
    except InputError:
        return
    check_canonical(once)
    assert canonicalize(once, strip_params=strip, sort_query=sort_query) == once


@SLOW_FUZZ
@given(st.text(min_size=1, max_size=8), st.integers(1, 2000), st.sampled_from(VALID_BASES))
def test_long_repetitive_urls_take_bounded_time(unit: str, times: int, base: str) -> None:
    # Repetition is where a backtracking regex or a quadratic loop would show.
    for url in (base + unit * times, "http://" + unit * times, unit * times):
        try:
            result = canonicalize(url, base=base)
        except InputError:
            continue
        check_canonical(result)


# --- link extraction ---

TAGS = st.sampled_from(
    ["a", "area", "link", "base", "meta", "frame", "iframe", "div", "p", "svg", "script",
     "template", "noscript", "table", "A", "BASE"]
)  # fmt: skip
ATTRIBUTES = st.sampled_from(
    ["href", "src", "rel", "name", "content", "xlink:href", "charset", "http-equiv", "HREF"]
)
VALUES = st.one_of(
    ANY_URL_TEXT,
    st.sampled_from(
        ["nofollow", "next", "prev previous", "robots", "shoal", "none", "noindex, nofollow",
         "utf-16", "x-user-defined", "text/html; charset=utf-7", "&amp;", "&#0;", "&#x110000;"]
    ),
)  # fmt: skip
QUOTES = st.sampled_from(['"', "'", ""])


@st.composite
def html_documents(draw: st.DrawFn) -> bytes:
    parts: list[str] = [draw(st.sampled_from(["", "<!doctype html>", "\ufeff<html>", "<html>"]))]
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.integers(0, 5))
        if kind == 0:
            parts.append(draw(st.text(max_size=10)))
        elif kind == 1:
            parts.append(f"</{draw(TAGS)}>")
        elif kind == 2:
            parts.append(draw(st.sampled_from(["<!--", "-->", "<![CDATA[", "]]>", "<", ">", "&"])))
        else:
            attributes = []
            for _ in range(draw(st.integers(0, 4))):
                quote = draw(QUOTES)
                attributes.append(f"{draw(ATTRIBUTES)}={quote}{draw(VALUES)}{quote}")
            parts.append(f"<{draw(TAGS)} {' '.join(attributes)}>")
    text = "".join(parts)
    # Repeated past 16 KiB, a document goes through the hazard screen and, when it is
    # nested deep or has huge tags, through the regular-expression fallback.
    text *= draw(st.sampled_from([1, 1, 1, 50, 400]))
    codec = draw(st.sampled_from(["utf-8", "utf-16", "cp1252", "shift_jis"]))
    return text.encode(codec, "surrogatepass" if codec.startswith("utf") else "replace")


CONTENT_TYPES = st.one_of(
    st.none(),
    st.sampled_from(
        ["text/html", "text/html; charset=utf-16", "text/html; charset=rot13",
         "text/html; charset=undefined", "text/html; charset=punycode", "text/html;charset=idna",
         "text/html; charset=utf-7", "application/xhtml+xml; charset=\"latin1\"",
         "text/html; charset=", "text/plain", ";", "", " text/HTML ; charset = utf-8"]
    ),
    st.text(max_size=30),
)  # fmt: skip
ENCODINGS = st.one_of(
    st.none(),
    st.sampled_from(
        ["utf-8", "utf-16", "utf-32", "utf-7", "cp1252", "iso-8859-1", "idna", "punycode",
         "undefined", "unicode_escape", "raw_unicode_escape", "base64", "zlib", "rot13",
         "hex", "uu", "mbcs", "x-user-defined", "replacement", "", " ", "\x00"]
    ),
    st.text(max_size=12),
)  # fmt: skip
HEADERS = st.lists(
    st.tuples(st.sampled_from(["X-Robots-Tag", "x-robots-tag", "Content-Type"]), st.text()),
    max_size=3,
)


def check_links(page_url: str, body: bytes, **kwargs: object) -> None:
    try:
        page = extract_links(body, url=page_url, **kwargs)  # type: ignore[arg-type]
    except InputError:
        with pytest.raises(InputError):
            canonicalize(page_url)  # only a bad page URL may raise
        return
    check_canonical(page.base)
    assert len(set(page.links)) == len(page.links)
    for link in page.links:
        check_canonical(link)
    assert min(page.skipped, page.invalid, page.nofollow) >= 0


@FUZZ
@given(st.binary(max_size=3000), CONTENT_TYPES, ENCODINGS, HEADERS, st.sampled_from(VALID_BASES))
def test_extract_links_from_any_bytes(
    body: bytes,
    content_type: str | None,
    encoding: str | None,
    headers: list[tuple[str, str]],
    page_url: str,
) -> None:
    check_links(page_url, body, content_type=content_type, encoding=encoding, headers=headers)


@SLOW_FUZZ
@given(html_documents(), CONTENT_TYPES, ENCODINGS, st.sampled_from(VALID_BASES), STRIP)
def test_extract_links_from_html_soup(
    body: bytes,
    content_type: str | None,
    encoding: str | None,
    page_url: str,
    strip: tuple[str, ...],
) -> None:
    check_links(
        page_url,
        body,
        content_type=content_type or "text/html",
        encoding=encoding,
        strip_params=strip,
        sort_query=bool(strip),
    )


@FUZZ
@given(ANY_URL_TEXT, st.binary(max_size=200), st.text(max_size=20))
def test_extract_links_raises_only_for_a_bad_page_url(
    page_url: str, body: bytes, robots_token: str
) -> None:
    check_links(page_url, b"<html><a href=x>" + body, content_type=None, robots_token=robots_token)


@settings(SLOW_FUZZ, max_examples=30)
@given(st.sampled_from(["div", "a", "table", "b", "span", "li"]), st.integers(1000, 40_000))
def test_deep_nesting_and_attribute_bombs_take_bounded_time(tag: str, depth: int) -> None:
    nested = (f"<{tag}><a href=/x{depth}>" * depth).encode()
    check_links(VALID_BASES[0], nested, content_type="text/html")
    bomb = ("<a href=/y " + " ".join(f"a{i}=1" for i in range(depth // 4)) + ">").encode()
    check_links(VALID_BASES[0], bomb, content_type="text/html")


# --- input lines ---

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
JSON_OBJECTS = st.dictionaries(
    st.sampled_from(["url", "method", "headers", "body", "URL", "extra"]),
    st.one_of(
        ANY_URL_TEXT,
        st.sampled_from(["GET", "post", "BAD METHOD", "", "\r\n"]),
        st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
        st.lists(st.lists(st.text(max_size=6), max_size=3), max_size=3),
        JSON_VALUES,
    ),
).map(lambda obj: json.dumps(obj, ensure_ascii=False, allow_nan=True))
LINES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    ANY_URL_TEXT,
    JSON_OBJECTS,
    JSON_OBJECTS.map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.sampled_from(["{", "{}", "[1]", '{"url": "http://a/", "url": "http://b/"}', "#x", "\ufeff"]),
)  # fmt: skip


def check_line(line: bytes | str, line_no: int) -> None:
    try:
        request = parse_line(line, line_no)
    except InputError as error:
        assert error.line_no == line_no
        assert error.reason and "\n" not in error.reason
        return
    if request is None:
        return
    check_canonical(request.url)
    assert request.host == canonical_host(request.url)
    assert request.fingerprint == canonical_fingerprint(
        request.url, method=request.method, body=request.body
    )


@FUZZ
@given(LINES, st.integers(1, 10**9))
@example('{"url": ' + "[" * 30_000 + "]" * 30_000 + "}", 1)  # json.loads recursion
@example("\ufeff\ufeffhttp://a/", 1)
@example(b"\xef\xbb\xbfhttp://a/\r\n", 1)
def test_parse_line_raises_only_input_error(line: bytes | str, line_no: int) -> None:
    check_line(line, line_no)


@SLOW_FUZZ
@given(st.sampled_from(["[", "{", '{"a":', "%", "/..", "\\", "a", "é", "\ud800"]), st.booleans())
def test_lines_at_the_length_limit_take_bounded_time(unit: str, as_json: bool) -> None:
    body = unit * (MAX_LINE_BYTES // len(unit.encode("utf-8", "surrogatepass")))
    line = json.dumps({"url": "http://a/" + body}) if as_json else "http://a/" + body
    check_line(line, 1)
    check_line(line.encode("utf-8", "surrogatepass"), 1)
    check_line(line + "x" * 10, 1)


@FUZZ
@given(st.lists(LINES, max_size=12), st.integers(-5, 5))
def test_parse_lines_yields_requests_and_errors_in_order(
    lines: list[bytes | str], start: int
) -> None:
    seen = -(10**9)
    for item in parse_lines(lines, start=start):
        assert isinstance(item, NewRequest | InputError)
        if isinstance(item, InputError):
            assert item.line_no is not None and start <= item.line_no < start + len(lines)
            assert item.line_no > seen
            seen = item.line_no


@FUZZ
@given(st.binary(max_size=10_000))
@example(b"\x1f\x8b\x08\x00")
@example(b"\xff\xfeh\x00t\x00")
@example(b"http://a/\n" * 100 + b"\x00")
def test_sniff_binary_never_raises(head: bytes) -> None:
    reason = sniff_binary(head)
    assert reason is None or (reason and "\n" not in reason)
    if b"\x00" in head[:8192]:
        assert reason is not None


def test_sniff_binary_passes_text() -> None:
    assert sniff_binary(b"") is None
    assert sniff_binary(b'\xef\xbb\xbfhttp://a/\n{"url": "http://b/"}\n') is None
    assert sniff_binary("https://bücher.de/ é\n".encode()) is None
    assert sniff_binary(b"BZh is a fine start of a comment line\n") is None
