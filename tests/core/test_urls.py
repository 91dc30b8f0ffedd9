"""Tests for shoal.core.urls: canonical URLs, fingerprints, politeness keys.

The WHATWG section runs the URL Standard's test vectors
(``data/urltestdata.json``, web-platform-tests ``url/resources/urltestdata.json``,
commit 04f8022e43aeac33a2f8ca248333cb5e8571b160, stored verbatim). A vector is
used when its expected result is an http(s) URL, or when it is a failure whose
base is absent, ``about:blank`` (treated as no base) or http(s). Expected
``href`` values are compared after shoal's deliberate extra normalisations,
and nothing else:

1. the fragment is dropped (``#...``, including a bare ``#``);
2. an empty query (a bare ``?``) is dropped;
3. percent-escapes get uppercase hex digits, and escapes of unreserved
   characters (``A-Z a-z 0-9 - . _ ~``) are decoded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from shoal.core.errors import InputError
from shoal.core.urls import (
    canonical_fingerprint,
    canonical_host,
    canonicalize,
    fingerprint,
    host_of,
)

# --- tables ---------------------------------------------------------------

CANONICAL = [
    ("https://example.com/a/b?x=1", "https://example.com/a/b?x=1"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com?x=1", "https://example.com/?x=1"),
    ("HTTP://ExAmPle.COM/Path", "http://example.com/Path"),
    ("http://example.com:80/", "http://example.com/"),
    ("https://example.com:443/", "https://example.com/"),
    ("http://example.com:443/", "http://example.com:443/"),
    ("https://example.com:080/", "https://example.com:80/"),
    ("http://example.com:8080", "http://example.com:8080/"),
    ("http://example.com/a/./b/../c", "http://example.com/a/c"),
    ("http://example.com/a/%2e%2E/b/%2E", "http://example.com/b/"),
    ("http://example.com/..", "http://example.com/"),
    ("http://example.com/.well-known/x", "http://example.com/.well-known/x"),
    ("http://example.com/a//b", "http://example.com/a//b"),
    ("http://example.com\\a\\b", "http://example.com/a/b"),
    ("http://example.com/%7euser/%41%62", "http://example.com/~user/Ab"),
    ("http://example.com/a%2fb%3a", "http://example.com/a%2Fb%3A"),
    ("http://example.com/a b", "http://example.com/a%20b"),
    ("http://example.com/é", "http://example.com/%C3%A9"),
    ("http://example.com/%zz%4", "http://example.com/%zz%4"),
    ("http://example.com/?q=a b&r=é", "http://example.com/?q=a%20b&r=%C3%A9"),
    ("http://example.com/?q=a+b", "http://example.com/?q=a+b"),
    ("http://example.com/?it's", "http://example.com/?it%27s"),
    ("http://example.com/?", "http://example.com/"),
    ("http://example.com/?#frag", "http://example.com/"),
    ("http://example.com/a#frag", "http://example.com/a"),
    ("http://example.com/?b=2&a=1", "http://example.com/?b=2&a=1"),
    ("  http://example.com/\t\n ", "http://example.com/"),
    ("http://bücher.DE/", "http://xn--bcher-kva.de/"),
    ("http://faß.example/", "http://xn--fa-hia.example/"),
    ("http://Ｇｏ.com/", "http://go.com/"),
    ("http://xn--bcher-kva.de/", "http://xn--bcher-kva.de/"),
    ("http://EXAMPLE.com./", "http://example.com./"),
    ("http://under_score.example/", "http://under_score.example/"),
    ("http://0x7f.1/", "http://127.0.0.1/"),
    ("http://2130706433/", "http://127.0.0.1/"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
    ("http://[0:0::1]:80/", "http://[::1]/"),
    ("http://[::FFFF:1.2.3.4]/", "http://[::ffff:102:304]/"),
    ("http://user:pa ss@example.com/", "http://user:pa%20ss@example.com/"),
    ("http://user:@example.com/", "http://user@example.com/"),
    ("http://:@example.com/", "http://example.com/"),
    ("http:example.com/a", "http://example.com/a"),
    ("https:///example.com/a", "https://example.com/a"),
]

RELATIVE = [
    ("/x", "https://example.com/a/b", "https://example.com/x"),
    ("x", "https://example.com/a/b", "https://example.com/a/x"),
    ("x", "https://example.com/a/", "https://example.com/a/x"),
    ("../x", "https://example.com/a/b/c", "https://example.com/a/x"),
    ("../../../x", "https://example.com/a/b", "https://example.com/x"),
    ("?q=1", "https://example.com/a/b?old=1", "https://example.com/a/b?q=1"),
    ("#top", "https://example.com/a/b?old=1", "https://example.com/a/b?old=1"),
    ("", "https://example.com/a/b?old=1#f", "https://example.com/a/b?old=1"),
    ("//other.org/p", "https://example.com/a", "https://other.org/p"),
    ("http:x", "http://example.com/a/b", "http://example.com/a/x"),
    ("http:x", "https://example.com/a/b", "http://x/"),
    ("HTTP://Other.org", "https://example.com/", "http://other.org/"),
    ("/p", "https://user@example.com:8443/q", "https://user@example.com:8443/p"),
    ("é?ü#x", "https://example.com/dir/", "https://example.com/dir/%C3%A9?%C3%BC"),
]

INVALID = [
    ("", "empty URL"),
    ("   ", "empty URL"),
    ("example.com/page", "missing scheme"),
    ("/relative/path", "missing scheme"),
    ("ftp://example.com/", "unsupported scheme 'ftp'"),
    ("mailto:someone@example.com", "unsupported scheme 'mailto'"),
    ("javascript:alert(1)", "unsupported scheme 'javascript'"),
    ("http://", "missing host"),
    ("http:///", "missing host"),
    ("http://user@/", "missing host"),
    ("http://:80/", "missing host"),
    ("http://example.com:99999/", "invalid port"),
    ("http://example.com:8o/", "invalid port"),
    ("http://example.com:-80/", "invalid port"),
    ("http://exa mple.com/", "forbidden character ' ' in host"),
    ("http://exa%20mple.com/", "forbidden character ' ' in host"),
    ("http://a<b/", "forbidden character '<' in host"),
    ("http://[::1/", "invalid IPv6 host"),
    ("http://[::g]/", "invalid IPv6 host"),
    ("http://[fe80::1%25eth0]/", "invalid IPv6 host"),
    ("http://256.1.1.1/", "invalid IPv4 host"),
    ("http://1.2.3.4.5/", "invalid IPv4 host"),
    ("http://foo.09/", "invalid IPv4 host"),
    ("http://\ufffd/", "invalid IDNA host"),
    ("http://xn--pokxncvks/", "invalid IDNA host"),
    ("http://\u0301a.example/", "invalid IDNA host"),
]


@pytest.mark.parametrize(("url", "expected"), CANONICAL)
def test_canonicalize(url: str, expected: str) -> None:
    assert canonicalize(url) == expected
    assert canonicalize(expected) == expected


@pytest.mark.parametrize(("url", "base", "expected"), RELATIVE)
def test_canonicalize_relative(url: str, base: str, expected: str) -> None:
    assert canonicalize(url, base=base) == expected


@pytest.mark.parametrize(("url", "reason"), INVALID)
def test_canonicalize_rejects(url: str, reason: str) -> None:
    with pytest.raises(InputError, match=re.escape(reason)) as caught:
        canonicalize(url)
    assert caught.value.line_no is None


def test_invalid_base_is_reported_as_such() -> None:
    with pytest.raises(InputError, match="invalid base URL: unsupported scheme 'about'"):
        canonicalize("page.html", base="about:blank")
    # An absolute URL does not need its base.
    assert canonicalize("https://a.example/", base="about:blank") == "https://a.example/"


QUERY_FILTERS: list[tuple[str, dict[str, Any], str]] = [
    ("https://e.com/?utm_source=x&id=1&utm_medium=y", {"strip_params": ["utm_*"]}, "?id=1"),
    ("https://e.com/?gclid=1&id=2&gclidx=3", {"strip_params": {"gclid"}}, "?id=2&gclidx=3"),
    ("https://e.com/?a=1&sid=2&xsid=3", {"strip_params": ("?sid",)}, "?a=1&sid=2"),
    ("https://e.com/?ref=1&id=2", {"strip_params": "ref"}, "?id=2"),
    ("https://e.com/?a=1&B=2", {"strip_params": str.isupper}, "?a=1"),
    ("https://e.com/?utm_a=1&utm_b", {"strip_params": ["utm_*"]}, ""),
    ("https://e.com/?utm%5Fa=1&k=2", {"strip_params": ["utm_*"]}, "?k=2"),
    ("https://e.com/?b=2&a=1&b=1&a=0", {"sort_query": True}, "?a=1&a=0&b=2&b=1"),
    ("https://e.com/?b=2&&a=1&", {"sort_query": True}, "?a=1&b=2"),
    ("https://e.com/?z=1&utm_x=2&c", {"strip_params": ["utm_*"], "sort_query": True}, "?c&z=1"),
    ("https://e.com?b=1&a=2", {"sort_query": True}, "?a=2&b=1"),
]


@pytest.mark.parametrize(("url", "options", "query"), QUERY_FILTERS)
def test_query_filters(url: str, options: dict[str, Any], query: str) -> None:
    expected = "https://e.com/" + query
    assert canonicalize(url, **options) == expected
    assert canonicalize(" " + url, **options) == expected  # the slow path too
    assert canonicalize(expected, **options) == expected


def test_query_order_is_kept_by_default() -> None:
    assert canonicalize("https://e.com/?b=2&a=1") == "https://e.com/?b=2&a=1"


HOSTS = [
    ("https://Example.COM:8443/x", "example.com"),
    ("http://bücher.de/", "xn--bcher-kva.de"),
    ("http://[::1]:8080/", "[::1]"),
    ("http://0x7f.0.0.1/", "127.0.0.1"),
    ("http://user:pw@host.example/", "host.example"),
    ("https://example.com/a/b?x=1", "example.com"),
]


@pytest.mark.parametrize(("url", "host"), HOSTS)
def test_host_of(url: str, host: str) -> None:
    assert host_of(url) == host


def test_host_of_rejects_invalid_urls() -> None:
    with pytest.raises(InputError, match="unsupported scheme"):
        host_of("ftp://example.com/")


def test_fingerprint() -> None:
    base = fingerprint("https://example.com/a?x=1")
    assert isinstance(base, bytes) and len(base) == 16
    assert fingerprint("HTTPS://EXAMPLE.com:443/a?x=1#top") == base
    assert fingerprint("https://example.com/a?x=1", method="GET", body=b"") == base
    assert fingerprint("https://example.com/a?x=1", method="HEAD") != base
    assert fingerprint("https://example.com/a?x=2") != base
    posted = fingerprint("https://example.com/a?x=1", method="POST", body=b"page=1")
    assert posted != fingerprint("https://example.com/a?x=1", method="POST", body=b"page=2")
    assert posted != fingerprint("https://example.com/a?x=1", method="POST")


# --- properties -----------------------------------------------------------

_ASCII_LABEL = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,8}", fullmatch=True)
_UNICODE_LABEL = st.text(alphabet="aZü中éßÉжΩ-", min_size=1, max_size=6).filter(
    lambda label: not label.startswith("-")
)
_IPV4 = st.ip_addresses(v=4).map(str)
_IPV6 = st.ip_addresses(v=6).map(lambda address: f"[{address}]")
_HOST = st.one_of(
    st.lists(st.one_of(_ASCII_LABEL, _UNICODE_LABEL), min_size=1, max_size=4).map(".".join),
    _IPV4,
    _IPV6,
)
_SEGMENT = st.one_of(
    st.sampled_from(
        [
            ".",
            "..",
            "%2e",
            "%2E",
            "%2e%2E",
            "a",
            "B",
            "%41",
            "%7e",
            "%7E",
            "%2f",
            "%2F",
            "é",
            " ",
            "中",
            "~",
            "%zz",
            "%",
            "%c3%a9",
            "x y",
            "a:b",
            "@",
            "{}",
            "^",
            "",
        ]
    ),
    st.text(alphabet="abcXYZ09-._~!$&'()*+,;=:@%é\"<>`{}^| ", max_size=6),
)
_PATH = st.lists(_SEGMENT, max_size=6).flatmap(
    lambda segments: st.sampled_from(["/", "\\"]).map(lambda sep: sep + sep.join(segments))
)
_QUERY = st.lists(
    st.tuples(
        st.text(alphabet="ab_utmK%2É é+'", max_size=5),
        st.text(alphabet="xy1%20é+'=/?\\", max_size=5),
    ),
    max_size=4,
).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "Https"]))
    host = draw(_HOST)
    port = draw(st.one_of(st.none(), st.integers(0, 65535), st.sampled_from([80, 443])))
    url = f"{scheme}://{host}" + ("" if port is None else f":{port}")
    url += draw(st.one_of(st.just(""), _PATH))
    query = draw(st.one_of(st.none(), _QUERY))
    if query is not None:
        url += "?" + query
    fragment = draw(st.one_of(st.none(), st.text(max_size=5)))
    if fragment is not None:
        url += "#" + fragment
    return url


def _canonical_or_none(url: str, **options: Any) -> str | None:
    try:
        return canonicalize(url, **options)
    except InputError:
        return None


@given(urls())
def test_canonicalize_is_idempotent(url: str) -> None:
    canonical = _canonical_or_none(url)
    if canonical is None:
        return
    assert canonicalize(canonical) == canonical
    assert re.match(r"https?://", canonical) and "#" not in canonical
    # The fast path (taken for canonical URLs) and the full parser agree.
    assert canonicalize(" " + canonical) == canonical
    # aiohttp sends what yarl holds; an encoded yarl URL keeps it byte for byte.
    assert str(URL(canonical, encoded=True)) == canonical


@given(urls(), st.lists(st.sampled_from(["utm_*", "a", "K", "?"]), max_size=3))
def test_query_filters_are_idempotent(url: str, strip: list[str]) -> None:
    canonical = _canonical_or_none(url, strip_params=strip, sort_query=True)
    if canonical is None:
        return
    assert canonicalize(canonical, strip_params=strip, sort_query=True) == canonical
    query = canonical.partition("?")[2]
    names = [pair.partition("=")[0] for pair in query.split("&")] if query else []
    assert names == sorted(names)
    assert not any(name.startswith("utm_") for name in names if "utm_*" in strip)


@given(st.text(max_size=40), st.sampled_from([None, "https://example.com/a/b?c#d"]))
def test_arbitrary_text_never_crashes(text: str, base: str | None) -> None:
    canonical = _canonical_or_none(text, base=base)
    if canonical is not None:
        assert canonicalize(canonical) == canonical


@given(st.text(alphabet="abc/.?#%é:@\\ ", max_size=12), urls())
def test_relative_links_resolve_to_canonical_urls(link: str, base: str) -> None:
    canonical_base = _canonical_or_none(base)
    if canonical_base is None:
        return
    canonical = _canonical_or_none(link, base=canonical_base)
    if canonical is not None:
        assert canonicalize(canonical) == canonical


def _flip_escape_case(text: str) -> str:
    return re.sub(r"%[0-9A-Fa-f]{2}", lambda m: m.group().swapcase(), text)


@given(
    st.sampled_from(["http", "https"]),
    st.lists(st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True), min_size=1, max_size=3),
    st.sampled_from(["", "/", "/a/b", "/%7Euser/%2Fx", "/caf%C3%A9", "/a%20b"]),
    st.sampled_from(["", "?x=1", "?q=%2F%3a&b=%41"]),
    st.text(max_size=5),
)
def test_equivalent_spellings_share_a_fingerprint(
    scheme: str, labels: list[str], path: str, query: str, fragment: str
) -> None:
    host = ".".join(labels)
    plain = f"{scheme}://{host}{path}{query}"
    default_port = {"http": 80, "https": 443}[scheme]
    variants = [
        f"{scheme.upper()}://{host.upper()}{path}{query}",
        f"{scheme}://{host}:{default_port}{path}{query}",
        f"{plain}#{fragment}",
        f"{scheme}://{host}{_flip_escape_case(path)}{_flip_escape_case(query)}",
        f"{scheme}://{host}{path.replace('b', '%62')}{query.replace('x', '%78')}",
    ]
    expected = fingerprint(plain)
    for variant in variants:
        assert fingerprint(variant) == expected, variant


# --- WHATWG URL Standard test vectors -------------------------------------

_VECTORS_FILE = Path(__file__).parent / "data" / "urltestdata.json"
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

# Vectors where shoal deliberately differs from WHATWG: (input, base) -> reason.
_EMPTY_LABEL = "shoal refuses host names with an empty label: no resolver can look them up"
_KNOWN_DIFFERENCES: dict[tuple[str, str | None], str] = {
    ("http://./", None): _EMPTY_LABEL,
    ("http://../", None): _EMPTY_LABEL,
    ("http://foo.09..", None): _EMPTY_LABEL,
}


def _normalise_expected(href: str) -> str:
    href = href.partition("#")[0]
    if href.endswith("?"):
        href = href[:-1]

    def escape(match: re.Match[str]) -> str:
        char = chr(int(match.group()[1:], 16))
        return char if char in _UNRESERVED else match.group().upper()

    return re.sub(r"%[0-9A-Fa-f]{2}", escape, href)


def _vectors() -> tuple[list[Any], list[Any]]:
    successes, failures = [], []
    for vector in json.loads(_VECTORS_FILE.read_text(encoding="utf-8")):
        if not isinstance(vector, dict):
            continue  # a comment line
        base = vector.get("base")
        if base == "about:blank":
            base = None  # only absolute URLs resolve against it; same as no base
        if base is not None and not re.match(r"https?:", base):
            continue
        key = (vector["input"], base)
        marks = []
        if key in _KNOWN_DIFFERENCES:
            marks.append(pytest.mark.xfail(reason=_KNOWN_DIFFERENCES[key], strict=True))
        if vector.get("failure"):
            failures.append(pytest.param(vector["input"], base, marks=marks, id=repr(key)))
        elif vector["protocol"] in ("http:", "https:"):
            expected = _normalise_expected(vector["href"])
            successes.append(pytest.param(*key, expected, marks=marks, id=repr(key)))
    return successes, failures


_SUCCESSES, _FAILURES = _vectors()


def test_whatwg_vectors_are_present() -> None:
    assert len(_SUCCESSES) > 200 and len(_FAILURES) > 200


@pytest.mark.parametrize(("url", "base", "expected"), _SUCCESSES)
def test_whatwg_vector(url: str, base: str | None, expected: str) -> None:
    canonical = canonicalize(url, base=base)
    assert canonical == expected
    assert canonicalize(canonical) == canonical


@pytest.mark.parametrize(("url", "base"), _FAILURES)
def test_whatwg_failure_vector(url: str, base: str | None) -> None:
    with pytest.raises(InputError):
        canonicalize(url, base=base)


@given(urls())
def test_shortcuts_for_canonical_urls_agree_with_the_parser(url: str) -> None:
    """``canonical_host`` and ``canonical_fingerprint`` skip re-parsing; they must not differ."""
    canonical = _canonical_or_none(url)
    if canonical is None:
        return
    assert canonical_host(canonical) == host_of(url)
    assert canonical_fingerprint(canonical) == fingerprint(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"),
        ("http://127.0.0.01/", "http://127.0.0.1/"),
        ("http://0x7f.1/", "http://127.0.0.1/"),
        ("http://256.1.1.1/", None),
        ("http://1.2.3/", "http://1.2.0.3/"),
    ],
)
def test_numeric_hosts(url: str, expected: str | None) -> None:
    assert _canonical_or_none(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/%%41a", "http://h/%%41a"),
        ("http://h/%%32%30", "http://h/%%32%30"),
        ("http://h/%4%41", "http://h/%4%41"),
        ("http://h/%%7euser", "http://h/%~user"),
        ("http://h/%41%7e", "http://h/A~"),
    ],
)
def test_stray_percent_never_spells_a_new_escape(url: str, expected: str) -> None:
    canonical = canonicalize(url)
    assert canonical == expected
    assert canonicalize(canonical) == canonical


@given(st.text(alphabet="%4aA1~-", max_size=12))
def test_percent_soup_is_idempotent(path: str) -> None:
    canonical = _canonical_or_none("http://h/" + path)
    if canonical is not None:
        assert canonicalize(canonical) == canonical


@pytest.mark.parametrize(
    ("url", "kwargs"),
    [
        ("http://0.0.0.0/%zz/../%41", {}),
        ("http://h/x?a=%zz&b=%41", {"strip_params": ["a"], "sort_query": True}),
        ("http://h/%/%41%", {}),
    ],
)
def test_stray_percent_in_a_removed_piece_changes_nothing(url: str, kwargs: Any) -> None:
    canonical = canonicalize(url, **kwargs)
    assert canonicalize(canonical, **kwargs) == canonical


def test_host_names_over_253_characters_are_refused() -> None:
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters
    assert canonicalize(f"http://{longest}/") == f"http://{longest}/"
    assert canonicalize(f"http://{longest}./") == f"http://{longest}./"
    for host in (longest + "e", "e" + longest, ".".join(["a" * 50] * 6)):
        with pytest.raises(InputError, match="at most 253"):
            canonicalize(f"http://{host}/")
