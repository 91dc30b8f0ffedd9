"""Tests for shoal.core.links: the links to follow from one fetched page."""

from __future__ import annotations

import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shoal.core import links, markup
from shoal.core.errors import InputError
from shoal.core.links import MAX_LINKS_PER_PAGE, PageLinks, extract_links
from shoal.core.urls import canonicalize

PAGE = "https://example.com/dir/page.html?q=1"


def extract(html: str | bytes, **kwargs: object) -> PageLinks:
    body = html.encode() if isinstance(html, str) else html
    options: dict[str, object] = {"url": PAGE, "content_type": "text/html"}
    options.update(kwargs)
    return extract_links(body, **options)  # type: ignore[arg-type]


def hrefs(*values: str) -> str:
    return "".join(f'<a href="{value}">x</a>' for value in values)


# --- resolving one href ---------------------------------------------------

RESOLVED = [
    ("https://other.org/x", "https://other.org/x"),
    ("HTTP://Example.COM:80/A", "http://example.com/A"),
    ("/abs", "https://example.com/abs"),
    ("rel", "https://example.com/dir/rel"),
    ("./rel", "https://example.com/dir/rel"),
    ("../up", "https://example.com/up"),
    ("../../../../up", "https://example.com/up"),
    ("/a/./b/../c", "https://example.com/a/c"),
    ("//cdn.example.net/x", "https://cdn.example.net/x"),
    ("///cdn.example.net/x", "https://cdn.example.net/x"),
    ("/\\cdn.example.net/x", "https://cdn.example.net/x"),
    ("\\\\cdn.example.net\\x", "https://cdn.example.net/x"),
    ("\\path", "https://example.com/path"),
    ("?p=2", "https://example.com/dir/page.html?p=2"),
    ("/a#frag", "https://example.com/a"),
    ("  /spaced \n", "https://example.com/spaced"),
    ("/a\tb\nc", "https://example.com/abc"),
    ("http:foo", "http://foo/"),
    ("https:rel", "https://example.com/dir/rel"),
    ("a b", "https://example.com/dir/a%20b"),
    ("é", "https://example.com/dir/%C3%A9"),
    ("/x?a=1&amp;b=2", "https://example.com/x?a=1&b=2"),
    ("https://bücher.de/", "https://xn--bcher-kva.de/"),
    ("https://EXAMPLE.com/%7efoo", "https://example.com/~foo"),
    ("a:b/c", None),  # an (uncrawlable) scheme "a"
    ("dir/a:b", "https://example.com/dir/dir/a:b"),
]


@pytest.mark.parametrize(("href", "expected"), RESOLVED)
def test_resolving_one_href(href: str, expected: str | None) -> None:
    result = extract(hrefs(href))
    assert result.links == (() if expected is None else (expected,))
    assert result.skipped == (1 if expected is None else 0)


SKIPPED = [
    "",
    "   ",
    "#",
    "#top",
    "javascript:void(0)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\nscript:alert(1)",
    "mailto:someone@example.com",
    "tel:+1-555-0100",
    "data:text/html,<b>hi</b>",
    "ftp://example.com/file",
    "file:///etc/passwd",
    "about:blank",
    "c:\\windows",
]


@pytest.mark.parametrize("href", SKIPPED)
def test_uncrawlable_hrefs_are_skipped(href: str) -> None:
    result = extract(hrefs(href))
    assert (result.links, result.skipped, result.invalid) == ((), 1, 0)


INVALID = [
    "http://[::1/",
    "https://example.com:99999/",
    "https://exa mple.com/",
    "http://",
    "https://xn--/",
    "//",
]


@pytest.mark.parametrize("href", INVALID)
def test_invalid_hrefs_are_counted_not_raised(href: str) -> None:
    result = extract(hrefs(href))
    assert (result.links, result.skipped, result.invalid) == ((), 0, 1)


def test_valueless_href_is_skipped() -> None:
    assert extract("<a href>x</a>").skipped == 1


def test_links_are_deduplicated_in_first_seen_order() -> None:
    html = hrefs("/b", "/a", "https://EXAMPLE.com/b", "/a#x", "/c", "../dir/../b")
    result = extract(html)
    assert result.links == (
        "https://example.com/b",
        "https://example.com/a",
        "https://example.com/c",
    )


def test_counts_are_per_occurrence() -> None:
    html = hrefs("#", "#", "mailto:x@y", "http://[", "http://[", "/ok", "/ok")
    html += '<a rel="nofollow" href="/n">x</a>' * 2
    result = extract(html)
    assert (result.skipped, result.invalid, result.nofollow) == (3, 2, 2)
    assert result.links == ("https://example.com/ok",)


def test_strip_params_and_sort_query_apply_to_every_link() -> None:
    html = hrefs("/x?utm_source=a&b=2&a=1", "https://o.org/?gclid=1&z=1")
    result = extract(html, strip_params=["utm_*", "gclid"], sort_query=True)
    assert result.links == ("https://example.com/x?a=1&b=2", "https://o.org/?z=1")
    predicate = extract(html, strip_params=lambda name: name != "b")
    assert predicate.links == ("https://example.com/x?b=2", "https://o.org/")
    assert extract(html, strip_params="gclid").links[1] == "https://o.org/?z=1"


def test_unhashable_strip_predicate_still_works() -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self, name: str) -> bool:
            return name == "a"

    result = extract(hrefs("/x?a=1&b=2"), strip_params=Unhashable())
    assert result.links == ("https://example.com/x?b=2",)


def test_invalid_page_url_raises() -> None:
    with pytest.raises(InputError):
        extract_links(b"<a href=/x>", url="ftp://example.com/", content_type="text/html")


# --- sources ----------------------------------------------------------------

SOURCES = [
    ('<area href="/map" shape="rect">', ("https://example.com/map",)),
    ('<link rel="next" href="/p2">', ("https://example.com/p2",)),
    ('<link rel="prev" href="/p0">', ("https://example.com/p0",)),
    ('<link rel="previous" href="/p0">', ("https://example.com/p0",)),
    ('<link rel="NEXT" href="/p2">', ("https://example.com/p2",)),
    ('<link rel="next prev" href="/p2">', ("https://example.com/p2",)),
    ('<link rel=" alternate\tnext " href="/p2">', ("https://example.com/p2",)),
    ('<link rel="stylesheet" href="/s.css">', ()),
    ('<link rel="nextpage" href="/p2">', ()),
    ('<link href="/p2">', ()),
    ('<link rel="canonical" href="/c">', ()),
    ('<iframe src="/frame"></iframe>', ("https://example.com/frame",)),
    ("<iframe></iframe>", ()),
    ('<img src="/i.png"><script src="/s.js"></script>', ()),
    ('<form action="/f"></form><button formaction="/b">', ()),
    ('<svg><a href="/svg"></a><a xlink:href="/xlink"></a></svg>', None),
    ('<noscript><a href="/ns">x</a></noscript>', ("https://example.com/ns",)),
    ('<template><a href="/tpl">x</a></template>', ()),
    ("<!-- <a href='/comment'>x</a> -->", ()),
    ('<script>document.write("<a href=/js>")</script>', ()),
    ('<A HREF="/upper">x</A>', ("https://example.com/upper",)),
    ('<a href="/first" href="/second">x</a>', ("https://example.com/first",)),
]


@pytest.mark.parametrize(("html", "expected"), SOURCES)
def test_sources(html: str, expected: tuple[str, ...] | None) -> None:
    result = extract(html)
    if expected is None:
        expected = ("https://example.com/svg", "https://example.com/xlink")
    assert result.links == expected


def test_frameset() -> None:
    html = '<html><frameset><frame src="/left"><frame src="right.html"></frameset></html>'
    assert extract(html).links == (
        "https://example.com/left",
        "https://example.com/dir/right.html",
    )


def test_document_order_across_element_kinds() -> None:
    html = (
        '<head><link rel="next" href="/1"></head><body><a href="/2">x</a>'
        '<iframe src="/3"></iframe><map><area href="/4"></map><a href="/5">x</a>'
    )
    assert extract(html).links == tuple(f"https://example.com/{i}" for i in range(1, 6))


# --- base href --------------------------------------------------------------

BASES = [
    ('<base href="/other/">', "https://example.com/other/"),
    ('<base href="sub/">', "https://example.com/dir/sub/"),
    ('<base href="https://b.example/x/y.html">', "https://b.example/x/y.html"),
    ('<base href="//b.example/x/">', "https://b.example/x/"),
    ('<base href="http://b.example">', "http://b.example/"),
    ('<base href="">', PAGE),
    ('<base href="javascript:void(0)">', PAGE),
    ('<base href="ftp://files.example/">', PAGE),
    ('<base href="http://[bad/">', PAGE),
    ('<base target="_blank"><base href="/second/">', "https://example.com/second/"),
    ('<base href="/first/"><base href="/second/">', "https://example.com/first/"),
]


@pytest.mark.parametrize(("tag", "base"), BASES)
def test_base_href(tag: str, base: str) -> None:
    result = extract(f"<head>{tag}</head>" + hrefs("rel", "/abs", "?q"))
    assert result.base == base
    assert result.links[0] == canonicalize("rel", base=base)
    assert result.links[1] == canonicalize("/abs", base=base)
    assert result.links[2] == canonicalize("?q", base=base)


def test_base_applies_to_links_before_it() -> None:
    result = extract(hrefs("before") + '<base href="https://b.example/d/">' + hrefs("after"))
    assert result.links == ("https://b.example/d/before", "https://b.example/d/after")


def test_page_url_is_canonicalized_as_base() -> None:
    result = extract_links(
        b"<a href=x>", url="HTTPS://Example.com:443/a/./b#f", content_type="text/html"
    )
    assert result.base == "https://example.com/a/b"
    assert result.links == ("https://example.com/a/x",)


# --- nofollow and robots directives ---------------------------------------


NOFOLLOW_LINKS = [
    ('<a rel="nofollow" href="/n">x</a>', 1),
    ('<a rel="NoFollow noopener" href="/n">x</a>', 1),
    ('<a rel="noopener\tnofollow" href="/n">x</a>', 1),
    ('<area rel="nofollow" href="/n">', 1),
    ('<a rel="nofollower" href="/n">x</a>', 0),
    ('<a rel="ugc sponsored" href="/n">x</a>', 0),
    ('<link rel="next nofollow" href="/n">', 0),
]


@pytest.mark.parametrize(("html", "count"), NOFOLLOW_LINKS)
def test_nofollow_links(html: str, count: int) -> None:
    result = extract(html)
    assert result.nofollow == count
    assert result.links == (() if count else ("https://example.com/n",))
    ignoring = extract(html, obey_nofollow=False)
    assert (ignoring.links, ignoring.nofollow) == (("https://example.com/n",), 0)


def test_a_nofollow_link_is_still_followed_from_another_anchor() -> None:
    result = extract('<a rel="nofollow" href="/n">x</a><a href="/n">y</a>')
    assert (result.links, result.nofollow) == (("https://example.com/n",), 1)


META = [
    ('<meta name="robots" content="nofollow">', False, True),
    ('<meta name="robots" content="noindex">', True, False),
    ('<meta name="robots" content="none">', True, True),
    ('<meta name="robots" content="NOINDEX, NOFOLLOW">', True, True),
    ('<meta name="robots" content="noindex,nofollow">', True, True),
    ('<meta name="ROBOTS" content="NoFollow">', False, True),
    ('<meta name=" robots " content=" nofollow ">', False, True),
    ('<meta name="robots" content="index, follow">', False, False),
    ('<meta name="robots" content="all">', False, False),
    ('<meta name="robots">', False, False),
    ('<meta name="shoal" content="nofollow">', False, True),
    ('<meta name="Shoal" content="noindex">', True, False),
    ('<meta name="googlebot" content="none">', False, False),
    ('<meta name="description" content="noindex nofollow">', False, False),
    ('<meta property="robots" content="none">', False, False),
    ('<meta name="robots" content="noindex"><meta name="shoal" content="nofollow">', True, True),
    ('<body><meta name="robots" content="nofollow"></body>', False, True),
]


@pytest.mark.parametrize(("html", "noindex", "nofollow"), META)
def test_meta_robots(html: str, noindex: bool, nofollow: bool) -> None:
    result = extract(html + hrefs("/x"))
    assert (result.noindex, result.nofollow_page) == (noindex, nofollow)
    assert result.links == (() if nofollow else ("https://example.com/x",))


def test_meta_nofollow_after_the_links_still_applies() -> None:
    result = extract(hrefs("/x") + '<meta name="robots" content="nofollow">')
    assert (result.links, result.nofollow_page) == ((), True)


def test_robots_token_selects_the_meta_name() -> None:
    html = '<meta name="mybot" content="nofollow"><meta name="shoal" content="noindex">' + hrefs(
        "/x"
    )
    mine = extract(html, robots_token="MyBot")
    assert (mine.nofollow_page, mine.noindex, mine.links) == (True, False, ())
    default = extract(html)
    assert (default.nofollow_page, default.noindex) == (False, True)


def test_obey_nofollow_false_reports_but_follows() -> None:
    result = extract(
        '<meta name="robots" content="none">' + hrefs("/x"),
        headers=[("X-Robots-Tag", "nofollow")],
        obey_nofollow=False,
    )
    assert (result.nofollow_page, result.noindex) == (True, True)
    assert result.links == ("https://example.com/x",)


X_ROBOTS = [
    ([("X-Robots-Tag", "noindex")], True, False),
    ([("X-Robots-Tag", "nofollow")], False, True),
    ([("x-robots-tag", "none")], True, True),
    ([("X-ROBOTS-TAG", "NoIndex, NoFollow")], True, True),
    ([("X-Robots-Tag", "noindex"), ("X-Robots-Tag", "nofollow")], True, True),
    ([("X-Robots-Tag", "otherbot: noindex")], False, False),
    ([("X-Robots-Tag", "otherbot: noindex, nofollow")], False, False),
    ([("X-Robots-Tag", "shoal: nofollow")], False, True),
    ([("X-Robots-Tag", "SHOAL : noindex")], True, False),
    ([("X-Robots-Tag", "noindex, otherbot: nofollow")], True, False),
    ([("X-Robots-Tag", "otherbot: nofollow, shoal: noindex")], True, False),
    ([("X-Robots-Tag", "otherbot: none"), ("X-Robots-Tag", "nofollow")], False, True),
    ([("X-Robots-Tag", "unavailable_after: 25 Jun 2030 15:00:00 PST")], False, False),
    ([("X-Robots-Tag", "max-snippet: 20, nofollow")], False, True),
    (
        [("X-Robots-Tag", "unavailable_after: Friday, 25-Jun-2030 15:00:00 PST, noindex")],
        True,
        False,
    ),
    ([("X-Robots-Tag", "all")], False, False),
    ([("X-Robots-Tag", "")], False, False),
    ([("X-Robots", "none"), ("Robots", "none"), ("Link", "nofollow")], False, False),
]


@pytest.mark.parametrize(("headers", "noindex", "nofollow"), X_ROBOTS)
def test_x_robots_tag(headers: list[tuple[str, str]], noindex: bool, nofollow: bool) -> None:
    result = extract(hrefs("/x"), headers=headers)
    assert (result.noindex, result.nofollow_page) == (noindex, nofollow)
    assert result.links == (() if nofollow else ("https://example.com/x",))


def test_x_robots_tag_for_a_custom_token() -> None:
    headers = [("X-Robots-Tag", "mybot: nofollow"), ("X-Robots-Tag", "shoal: noindex")]
    result = extract(hrefs("/x"), headers=headers, robots_token="mybot")
    assert (result.nofollow_page, result.noindex) == (True, False)


def test_x_robots_tag_applies_to_non_html() -> None:
    result = extract(
        b"%PDF-1.4", content_type="application/pdf", headers=[("X-Robots-Tag", "none")]
    )
    assert (result.links, result.noindex, result.nofollow_page) == ((), True, True)


# --- content types and sniffing --------------------------------------------

CONTENT_TYPES = [
    ("text/html", True),
    ("TEXT/HTML; charset=UTF-8", True),
    (" text/html ;charset=utf-8", True),
    ("application/xhtml+xml", True),
    ("text/plain", False),
    ("application/json", False),
    ("image/png", False),
    ("text/htmlx", False),
    ("text/xml", False),
    ("application/octet-stream", False),
]


@pytest.mark.parametrize(("content_type", "parsed"), CONTENT_TYPES)
def test_content_types(content_type: str, parsed: bool) -> None:
    result = extract(hrefs("/x"), content_type=content_type)
    assert result.links == (("https://example.com/x",) if parsed else ())
    assert result.base == PAGE


SNIFFED = [
    (b"<!DOCTYPE html><a href=/x>", True),
    (b"<!doctype HTML>\n<a href=/x>", True),
    (b"<html><a href=/x>", True),
    (b"<HTML lang=en><a href=/x>", True),
    (b"  \r\n\t <html><a href=/x>", True),
    (b"\xef\xbb\xbf<!doctype html><a href=/x>", True),
    (b"\xef\xbb\xbf \n<html><a href=/x>", True),
    ("\ufeff<html><a href=/x>".encode("utf-16-le"), True),
    ("\ufeff \n<!DOCTYPE html><a href=/x>".encode("utf-16-be"), True),
    (b" " * 5000 + b"<html><a href=/x>", True),
    (b"<a href=/x>", False),
    (b"<?xml version='1.0'?><a href=/x>", False),
    (b"<!-- c --><html><a href=/x>", False),
    (b"%PDF-1.4 <html><a href=/x>", False),
    (b"", False),
    (b"<htm", False),
]


@pytest.mark.parametrize(("body", "parsed"), SNIFFED)
@pytest.mark.parametrize("content_type", [None, "", "  "])
def test_sniffing_without_content_type(body: bytes, parsed: bool, content_type: str | None) -> None:
    result = extract(body, content_type=content_type)
    assert result.links == (("https://example.com/x",) if parsed else ())


# --- decoding ---------------------------------------------------------------

LATIN1_PAGE = '<a href="/café">x</a>'.encode("latin-1")
CYRILLIC = '<meta charset="windows-1251"><a href="/Привет">x</a>'.encode("windows-1251")
CAFE = "https://example.com/caf%C3%A9"
PRIVET = "https://example.com/%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82"

DECODING = [
    (LATIN1_PAGE, "text/html; charset=iso-8859-1", None, CAFE),
    (LATIN1_PAGE, 'text/html; charset="ISO-8859-1"', None, CAFE),
    (LATIN1_PAGE, "text/html; charset=windows-1252", None, CAFE),
    (LATIN1_PAGE, "text/html; charset=utf-8", "latin-1", CAFE),
    (LATIN1_PAGE, "text/html; charset=utf-8", None, "https://example.com/caf%EF%BF%BD"),
    (LATIN1_PAGE, "text/html", None, "https://example.com/caf%EF%BF%BD"),
    (CYRILLIC, "text/html", None, PRIVET),
    (CYRILLIC, None, None, None),  # not sniffed as HTML: no doctype
    (CYRILLIC, "text/html; charset=bogus-charset", None, PRIVET),
    (CYRILLIC, "text/html; charset=rot13", None, PRIVET),
    (CYRILLIC, "text/html; charset=base64", None, PRIVET),
    (CYRILLIC, "text/html", "windows-1251", PRIVET),
    (CYRILLIC, "text/html", "\x00", PRIVET),
    ('\ufeff<a href="/café">'.encode("utf-16-le"), "text/html; charset=latin-1", None, CAFE),
    ('\ufeff<a href="/café">'.encode("utf-8"), "text/html; charset=latin-1", None, CAFE),
    ('<a href="/café">'.encode("utf-16-le"), "text/html; charset=utf-16le", None, CAFE),
    ('<a href="/café">'.encode("utf-16-le"), "text/html", "utf-16", CAFE),
    ('<a href="/café">'.encode("shift_jis", "replace"), "text/html", "idna", "same"),
    ('<a href="/café">'.encode(), "text/html", "punycode", "same"),
    ('<a href="/café">'.encode(), "text/html", "utf-7", "same"),
    # Python's escape codecs are no charset: the bytes are read as UTF-8.
    (
        b'<a href="/caf\\e9">',
        "text/html; charset=unicode-escape",
        None,
        "https://example.com/caf/e9",
    ),
    ('<a href="/café">'.encode(), "text/html", "raw-unicode-escape", CAFE),
]


@pytest.mark.parametrize(("body", "content_type", "encoding", "expected"), DECODING)
def test_decoding(
    body: bytes, content_type: str | None, encoding: str | None, expected: str | None
) -> None:
    result = extract(body, content_type=content_type, encoding=encoding)
    if expected == "same":  # a strange codec: whatever it gives, no exception
        assert all(link == canonicalize(link) for link in result.links)
    else:
        assert result.links == (() if expected is None else (expected,))


GARBAGE = [
    b"<a href='/\xff\xfe\xfd'>x</a>",
    b"<a href='/\xc3'>x</a>",
    b"<a href='/\xed\xa0\x80'>x</a>",  # an encoded surrogate
    b"<a href='/a\x00b'>x</a>",
    b"\x00\x00<a\x00 href=/x>",
    b"<a href='/x'>" + bytes(range(256)) * 10,
]


@pytest.mark.parametrize("body", GARBAGE)
@pytest.mark.parametrize("encoding", [None, "utf-8", "shift_jis", "utf-16", "cp1252"])
def test_charset_garbage_never_raises(body: bytes, encoding: str | None) -> None:
    result = extract(body, encoding=encoding)
    assert all(link == canonicalize(link) for link in result.links)


# --- malformed and hostile markup ------------------------------------------

MALFORMED = [
    ('<a href=\'/a><a href="/b">', ()),  # the quote swallows the next tag
    ('<a href="/a"><a href="/b">', ("/a", "/b")),
    ('<div><p><a href="/a">x<table><a href="/b">', ("/a", "/b")),
    ('<a href="/a"\x00><b><i><a href="/b"></b></i>', ("/a", "/b")),
    ("<a href=/a/b/>x</a><a href=/c >y", ("/a/b/", "/c")),
    ("<a href=/a", ()),
    ('<a href="/a', ()),
    ('<a\nhref\n=\n"/a"\n>', ("/a",)),
    ("<<a href=/a>>", ("/a",)),
    ("</a href=/a>", ()),
]


@pytest.mark.parametrize(("html", "expected"), MALFORMED)
def test_malformed_markup(html: str, expected: tuple[str, ...]) -> None:
    assert extract(html).links == tuple("https://example.com" + path for path in expected)


def _timed(body: bytes) -> tuple[PageLinks, float]:
    start = time.perf_counter()
    result = extract(body)
    return result, time.perf_counter() - start


HOSTILE = [
    ("deep divs", b"<div>" * 100_000 + b"<a href=/deep>x</a>" + b"</div>" * 100_000),
    ("deep unclosed sections", b"<section><ul>" * 50_000 + b"<a href=/deep>x</a>"),
    ("deep inline", b"<span><b>" * 50_000 + b"<a href=/deep>x</a>"),
    ("unclosed anchors", b"<a href=/deep>" * 100_000),
    ("many attributes", b"<a " + b" ".join(b"x%d" % i for i in range(50_000)) + b" href=/deep>"),
    (
        "many valued attributes",
        b"<a " + b"".join(b"x%d=1 " % i for i in range(50_000)) + b"href=/deep>",
    ),
    ("long line", b"<html><p>" + b"x" * 10_000_000 + b"<a href=/deep>"),
    ("long attribute", b"<a href='/deep' title='" + b"x " * 2_000_000 + b"'>"),
    ("unclosed comment", b"<a href=/deep><!--" + b"<a href=/no>" * 50_000),
    ("nuls", b"\x00<a href=/deep>\x00" * 10_000),
]


@pytest.mark.parametrize(("name", "body"), HOSTILE, ids=[name for name, _ in HOSTILE])
def test_hostile_markup_is_fast_and_finds_links(name: str, body: bytes) -> None:
    result, seconds = _timed(body)
    assert result.links == ("https://example.com/deep",)
    # Quadratic behaviour would take minutes; a loaded machine takes well under 3 s.
    assert seconds < 3.0, f"{name}: {seconds:.2f} s for {len(body)} bytes"


def test_fallback_scanner_agrees_with_the_parser_on_sane_markup() -> None:
    html = (
        b'<html><head><base href="/b/"><meta name="ROBOTS" content="noindex">'
        b'<link rel="next" href="n.html"><link rel=stylesheet href=s.css></head><body>'
        b'<a href="a.html?x=1&amp;y=2">a</a><A HREF=\'/abs\' REL="nofollow">b</A>'
        b"<a href=bare>c</a><area href=\"//h.example/area\"><iframe src='if'></iframe>"
        b'<a name="anchor">no href</a><a href>valueless</a>'
    )
    elements, _ = links._elements(html, None, "text/html", links.MAX_LINKS_PER_PAGE)
    parsed = [(node.tag, node.attributes) for node in elements]
    scanned = [(found.tag, found.attributes) for found in links._scan_fallback(html, None, None)[0]]
    assert scanned == parsed


def test_screen_passes_ordinary_large_pages() -> None:
    row = b'<tr><td><a href="/r">row</a></td><td><img src=i.png><br></td></tr>\n'
    page = b"<!doctype html><html><body><table>" + row * 20_000 + b"</table></body></html>"
    text = b"<p>" + b"word " * 2_000 + b"</p>"
    data_uri = b'<img src="data:image/png;base64,' + b"A" * 100_000 + b'">'
    for body in (page, text * 50, data_uri * 10):
        assert not markup.looks_hazardous(body)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6000), st.sampled_from([b"<", b">", b"<>", b"><"])),
        max_size=12,
    )
)
def test_long_run_probe_equals_brute_force(pieces: list[tuple[int, bytes]]) -> None:
    body = b"".join(b"x" * length + delimiter for length, delimiter in pieces)
    longest = max(len(run) for run in body.split(b">"))
    if longest >= markup._LONG_RUN:
        assert markup._has_long_run(body)
    if longest < markup._PROBE_STRIDE:
        assert not markup._has_long_run(body)


# --- properties ---------------------------------------------------------------

HTML_PIECES = st.sampled_from(
    [
        "<a href=",
        "<a href='",
        '<a href="',
        "<area href=",
        "<link rel='next prev' href=",
        "<iframe src=",
        "<frame src=",
        "<base href=",
        "<meta name=robots content=",
        "'",
        '"',
        ">",
        "</a>",
        "<div>",
        "<!--",
        "-->",
        "<script>",
        "/",
        "//",
        "../",
        "?",
        "#",
        "&amp;",
        "&#0;",
        "http://",
        "https://",
        "javascript:",
        "%",
        "%2e",
        ".",
        ":",
        "[",
        "]",
        "@",
        "\\",
        " ",
        "\t",
        "\x00",
        "é",
        "xn--",
        "example.com",
        "a",
        "1",
        "nofollow",
        "noindex",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from([None, "text/html", "text/html; charset=utf-16"]))
@example(b"\xff\xfe<\x00a\x00", None)
def test_arbitrary_bytes_never_raise(body: bytes, content_type: str | None) -> None:
    result = extract(b"<!doctype html>" + body, content_type=content_type)
    for link in result.links:
        assert link.startswith(("http://", "https://"))
        assert canonicalize(link) == link


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(HTML_PIECES, st.text(max_size=5)), max_size=40).map("".join))
def test_arbitrary_markup_gives_canonical_links(html: str) -> None:
    for body in (html.encode("utf-8", "surrogatepass"), html.encode("utf-16")):
        result = extract(body)
        assert len(set(result.links)) == len(result.links)
        for link in result.links:
            assert link.startswith(("http://", "https://"))
            assert canonicalize(link) == link
        fallback, _ = links._scan_fallback(body, None, None)
        assert all(isinstance(found.tag, str) for found in fallback)


def _fixed_point(url: str) -> str:
    while (again := canonicalize(url)) != url:
        url = again
    return url


def test_links_are_fixed_points_of_canonicalize() -> None:
    # A stray "%" before an escape: the escape is kept, never turned into a new one.
    result = extract(hrefs("%%41a", "/x?q=%%41b"))
    assert result.links == ("https://example.com/dir/%%41a", "https://example.com/x?q=%%41b")
    assert all(canonicalize(link) == link for link in result.links)


BASE_URLS = st.sampled_from(
    [
        "https://example.com/",
        "https://example.com/dir/page.html?q=1&r=/x/",
        "http://user:pw@example.com:8080/a/b/",
        "http://127.0.0.1/a",
        "http://[::1]:81/x/y?z",
        "https://xn--bcher-kva.de/%C3%A9/",
    ]
)
HREF_PIECES = st.sampled_from(
    ["/", "//", "\\", ".", "..", "./", "../", "?", "#", "&", "=", ":", "@", "%", "%2e", "%41"]
    + [" ", "\t", "\n", "\x01", "é", "a", "b", "host", "example.com", "http:", "https:"]
)


@settings(max_examples=1000, deadline=None)
@given(BASE_URLS, st.lists(st.one_of(HREF_PIECES, st.text(max_size=3)), max_size=8).map("".join))
@example("https://example.com/", "/\t/evil.com/")
@example("https://example.com/", "\x01//evil.com/")
@example("https://example.com/a", "http:/x")
@example("https://example.com/", ":%%41a")
@example("https://example.com/", "%%41a")
def test_fast_join_equals_canonicalize_with_base(base: str, href: str) -> None:
    base = canonicalize(base)
    resolved = links._resolve(href, links._Base.of(base), links._canonicalizer((), False))
    stripped = href.strip(links._C0_AND_SPACE)
    try:
        expected: str | int = _fixed_point(canonicalize(href, base=base))
    except InputError:
        expected = links._INVALID
    if resolved == links._SKIPPED:
        stripped = links._TAB_NEWLINE.sub("", stripped)
        scheme = links._SCHEME.match(stripped)
        assert not stripped or stripped.startswith("#") or scheme is not None
    else:
        assert resolved == expected


@pytest.mark.parametrize("tags", [1_000, 60_000], ids=["parsed", "dense-scanned"])
def test_links_per_page_are_bounded(tags: int) -> None:
    body = b"<!doctype html><body>" + b"".join(b'<a href="/p/%d">x</a>' % n for n in range(tags))
    page = extract_links(body, url="http://h.example/", content_type="text/html", max_links=500)
    assert page.links == tuple(f"http://h.example/p/{n}" for n in range(500))
    assert page.truncated
    whole = extract_links(body, url="http://h.example/", content_type="text/html", max_links=tags)
    assert len(whole.links) == tags and not whole.truncated
    assert MAX_LINKS_PER_PAGE == 10_000


def test_no_links_are_read_for_a_page_whose_links_are_not_followed() -> None:
    body = (
        b'<!doctype html><head><meta name="robots" content="noindex"></head>'
        b'<body><a href="/a">a</a></body>'
    )
    page = extract_links(body, url="http://h.example/", content_type="text/html", max_links=0)
    assert (page.links, page.truncated, page.noindex) == ((), True, True)
