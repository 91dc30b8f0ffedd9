"""Tests for shoal.core.sitemaps: XML, text and gzip sitemaps, and hostile input."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.core.errors import ConfigError
from shoal.core.sitemaps import SitemapParse, parse_sitemap
from shoal.core.urls import canonicalize

DATA = Path(__file__).parent / "data" / "sitemaps"
MiB = 1024 * 1024

URLSET_URLS = (
    "https://www.example.com/",
    "https://www.example.com/catalog?item=12&desc=vacation_hawaii",
    "https://www.example.com/caf%C3%A9",
    "https://www.example.com/cdata?a=1&b=2",
)


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def urlset(*locs: str) -> bytes:
    entries = "".join(f"<url><loc>{escape(loc)}</loc></url>" for loc in locs)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'
    ).encode()


# --- fixtures ---


def test_urlset() -> None:
    # image:loc is an extension, not a page; "/relative/path", "ftp:" and an
    # empty <loc> are dropped; the repeated home page is listed once.
    assert parse_sitemap(fixture("urlset.xml")) == SitemapParse(
        kind="urlset", urls=URLSET_URLS, dropped=3
    )


def test_gzipped_urlset() -> None:
    data = fixture("urlset.xml.gz")
    assert gzip.decompress(data) == fixture("urlset.xml")
    assert parse_sitemap(data) == parse_sitemap(fixture("urlset.xml"))


def test_sitemap_index() -> None:
    assert parse_sitemap(fixture("sitemapindex.xml")) == SitemapParse(
        kind="sitemapindex",
        urls=(
            "https://www.example.com/sitemap1.xml.gz",
            "https://www.example.com/sitemap2.xml.gz",
        ),
    )


def test_no_namespace() -> None:
    assert parse_sitemap(fixture("no_namespace.xml")) == SitemapParse(
        kind="urlset", urls=("http://example.com/one", "http://example.com/two")
    )


def test_prefixed_namespace() -> None:
    assert parse_sitemap(fixture("prefixed.xml")) == SitemapParse(
        kind="urlset", urls=("http://example.com/prefixed",)
    )


def test_undeclared_extension_prefix_is_tolerated() -> None:
    assert parse_sitemap(fixture("undeclared_prefix.xml")) == SitemapParse(
        kind="urlset", urls=("http://example.com/with-video",)
    )


def test_text_sitemap() -> None:
    # BOM, CRLF, CR, blank lines and padding; two lines are not http(s) URLs.
    assert parse_sitemap(fixture("text.txt")) == SitemapParse(
        kind="text",
        urls=("http://example.com/a", "http://example.com/b", "http://example.com/c"),
        dropped=2,
    )


def test_malformed_xml_keeps_what_came_before() -> None:
    result = parse_sitemap(fixture("malformed.xml"))
    assert result.kind == "urlset"
    # the damage is the "</url" without ">": the <loc> before it was complete
    assert result.urls == ("http://example.com/before-the-damage", "http://example.com/broken")
    assert result.error is not None and result.error.startswith("malformed XML: ")
    assert not result.truncated


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml"])
def test_doctype_is_refused(name: str) -> None:
    result = parse_sitemap(fixture(name))
    assert result == SitemapParse(
        kind="invalid", error="refused: the document has a DOCTYPE (entities are not expanded)"
    )


def test_feeds_are_not_sitemaps() -> None:
    assert parse_sitemap(fixture("rss.xml")) == SitemapParse(
        kind="invalid", error="not a sitemap: the root element is <rss>"
    )


# --- caps and bombs ---


def test_gzip_bomb_costs_bounded_memory_and_time() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = packer.compress(bytes(10 * MiB)) + packer.flush()
    assert len(bomb) < 20 * 1024
    tracemalloc.start()
    try:
        result = parse_sitemap(bomb, max_bytes=1 * MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.truncated
    assert result.kind == "invalid"
    assert result.urls == ()
    assert peak < 1 * MiB, f"peak {peak} bytes"


def test_xml_gzip_bomb_is_cut_at_max_bytes() -> None:
    entry = b"<url><loc>http://example.com/same</loc></url>"
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = packer.compress(b"<urlset>" + entry * 200_000) + packer.flush()
    result = parse_sitemap(bomb, max_bytes=1 * MiB)
    assert result == SitemapParse(kind="urlset", urls=("http://example.com/same",), truncated=True)


def test_plain_input_is_cut_at_max_bytes() -> None:
    data = urlset("http://example.com/1", "http://example.com/2")
    cut = data.index(b"/2<")
    result = parse_sitemap(data, max_bytes=cut)
    assert result == SitemapParse(kind="urlset", urls=("http://example.com/1",), truncated=True)


def test_text_cut_at_max_bytes_drops_the_partial_line() -> None:
    data = b"http://example.com/1\nhttp://example.com/22222\n"
    result = parse_sitemap(data, max_bytes=data.index(b"222"))
    assert result == SitemapParse(kind="text", urls=("http://example.com/1",), truncated=True)


@pytest.mark.parametrize("size", [1, 20, 70_000, 200_000])
def test_a_document_of_exactly_max_bytes_is_whole(size: int) -> None:
    data = (b"http://example.com/" + b"x" * size)[:size]
    for more in (b"", b"\n"):
        for payload in (data + more, gzip.compress(data + more)):
            assert parse_sitemap(payload, max_bytes=size).truncated is bool(more)


@pytest.mark.parametrize("kind", ["xml", "text"])
def test_max_urls(kind: str) -> None:
    urls = [f"http://example.com/{n}" for n in range(10)]
    data = urlset(*urls) if kind == "xml" else "\n".join(urls).encode()
    result = parse_sitemap(data, max_urls=3)
    assert result.urls == tuple(urls[:3])
    assert result.truncated
    assert result.error is None
    assert not parse_sitemap(data, max_urls=10).truncated


def test_duplicates_do_not_count_against_max_urls() -> None:
    data = urlset("http://example.com/1", "http://example.com/1#x", "http://example.com/2")
    assert parse_sitemap(data, max_urls=2) == SitemapParse(
        kind="urlset", urls=("http://example.com/1", "http://example.com/2")
    )


def test_overlong_urls_are_dropped_without_keeping_them() -> None:
    long_url = "http://example.com/" + "x" * 9000
    xml = parse_sitemap(urlset(long_url, "http://example.com/ok"))
    assert xml == SitemapParse(kind="urlset", urls=("http://example.com/ok",), dropped=1)
    text = parse_sitemap(f"{long_url}\nhttp://example.com/ok\n{long_url}".encode())
    assert text == SitemapParse(kind="text", urls=("http://example.com/ok",), dropped=2)


def test_overlong_text_line_across_chunks() -> None:
    data = b"http://example.com/" + b"x" * 300_000 + b"\r\nhttp://example.com/ok\r\n"
    assert parse_sitemap(data) == SitemapParse(
        kind="text", urls=("http://example.com/ok",), dropped=1
    )


def test_many_urls_across_chunk_boundaries() -> None:
    urls = [f"http://example.com/page/{n}" for n in range(5000)]
    for data in (urlset(*urls), "\r\n".join(urls).encode()):
        for payload in (data, gzip.compress(data)):
            assert parse_sitemap(payload).urls == tuple(urls)


# --- gzip ---


def test_multi_member_gzip() -> None:
    data = gzip.compress(b"http://example.com/1\n") + gzip.compress(b"http://example.com/2\n")
    assert parse_sitemap(data).urls == ("http://example.com/1", "http://example.com/2")


def test_gzip_trailing_garbage_is_ignored() -> None:
    data = gzip.compress(urlset("http://example.com/1")) + b"\x00\x00garbage"
    assert parse_sitemap(data) == SitemapParse(kind="urlset", urls=("http://example.com/1",))


def test_cut_off_gzip_keeps_what_came_before() -> None:
    urls = [f"http://example.com/{n}" for n in range(2000)]
    data = gzip.compress(urlset(*urls))
    result = parse_sitemap(data[: len(data) // 2])
    assert result.kind == "urlset"
    assert result.error == "gzip stream ends early"
    assert 0 < len(result.urls) < len(urls)
    assert result.urls == tuple(urls[: len(result.urls)])


def test_corrupt_gzip() -> None:
    data = bytearray(gzip.compress(urlset("http://example.com/1")))
    data[12:20] = b"\xff" * 8
    result = parse_sitemap(bytes(data))
    assert result.kind == "invalid"
    assert result.error is not None and result.error.startswith("bad gzip data")


def test_gzip_magic_alone() -> None:
    assert parse_sitemap(b"\x1f\x8b") == SitemapParse(
        kind="invalid", error="gzip stream ends early"
    )


# --- kinds, encodings, odd documents ---


@pytest.mark.parametrize(
    ("data", "kind", "error"),
    [
        (b"", "invalid", "empty document"),
        (b" \r\n\t", "invalid", "empty document"),
        (b"\xef\xbb\xbf", "invalid", "empty document"),
        (b"hello\nworld", "invalid", "not a sitemap: no line is an http(s) URL"),
        (b"\x00\x01\x02", "invalid", "not a sitemap: no line is an http(s) URL"),
        (b"<urlset/>", "urlset", None),
        (b"<sitemapindex></sitemapindex>", "sitemapindex", None),
        (
            b"<html><body>Not found</body></html>",
            "invalid",
            "not a sitemap: the root element is <html>",
        ),
        (
            b"<!DOCTYPE html><html></html>",
            "invalid",
            "refused: the document has a DOCTYPE (entities are not expanded)",
        ),
        (
            b"<urlset>&undefined;</urlset>",
            "urlset",
            "malformed XML: undefined entity: line 1, column 8",
        ),
        (
            b"<urlset></urlset><urlset>",
            "urlset",
            "malformed XML: junk after document element: line 1, column 17",
        ),
    ],
)
def test_kinds(data: bytes, kind: str, error: str | None) -> None:
    result = parse_sitemap(data)
    assert (result.kind, result.error, result.urls) == (kind, error, ())


def test_leading_whitespace_and_bom_before_the_xml_declaration() -> None:
    data = b"\xef\xbb\xbf\n\n  " + urlset("http://example.com/1")
    assert parse_sitemap(data).urls == ("http://example.com/1",)


_ONE_ACCENTED_URL = "<urlset><url><loc>http://example.com/é</loc></url></urlset>"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_xml(encoding: str) -> None:
    text = '<?xml version="1.0" encoding="UTF-16"?>' + _ONE_ACCENTED_URL
    data = text.encode(encoding)
    if encoding != "utf-16":  # add the BOM that "utf-16" writes itself
        data = ("\ufeff" + text).encode(encoding)
    assert parse_sitemap(data).urls == ("http://example.com/%C3%A9",)


def test_latin1_xml() -> None:
    data = ('<?xml version="1.0" encoding="ISO-8859-1"?>' + _ONE_ACCENTED_URL).encode("latin-1")
    assert parse_sitemap(data).urls == ("http://example.com/%C3%A9",)


@pytest.mark.parametrize("encoding", ["rot13", "utf-7", "idna", "no-such-codec"])
def test_unusable_declared_encoding(encoding: str) -> None:
    data = f'<?xml version="1.0" encoding="{encoding}"?><urlset/>'.encode()
    result = parse_sitemap(data)
    assert result.kind == "invalid"
    assert result.error is not None


def test_loc_outside_an_entry_is_ignored() -> None:
    data = b"<urlset><loc>http://example.com/stray</loc>"
    data += b"<url><x><loc>http://example.com/deep</loc></x></url></urlset>"
    assert parse_sitemap(data) == SitemapParse(kind="urlset")


def test_loc_text_with_entities_and_split_character_data() -> None:
    data = b"<urlset><url><loc>http://example.com/?a=1&amp;b=&#50;<!-- c -->&#x33;</loc></url>"
    data += b"</urlset>"
    assert parse_sitemap(data).urls == ("http://example.com/?a=1&b=23",)


def test_caps_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        parse_sitemap(b"", max_bytes=0)
    with pytest.raises(ConfigError):
        parse_sitemap(b"", max_urls=0)


# --- properties ---


@given(st.binary(max_size=3000))
def test_any_bytes_are_read_without_error(data: bytes) -> None:
    result = parse_sitemap(data, max_bytes=2000, max_urls=5)
    assert len(result.urls) <= 5


@given(st.binary(max_size=3000))
def test_any_gzipped_bytes_are_read_without_error(data: bytes) -> None:
    packed = gzip.compress(data, mtime=0)
    if not data.startswith(b"\x1f\x8b"):  # gzip inside gzip is inflated once only
        assert parse_sitemap(packed) == parse_sitemap(data)
    parse_sitemap(packed[: len(packed) // 2])
    parse_sitemap(b"\x1f\x8b" + data)


@given(st.text(max_size=500).map(lambda text: f"<urlset><url><loc>{text}").map(str.encode))
def test_any_xml_prefix_is_read_without_error(data: bytes) -> None:
    parse_sitemap(data)


# Characters XML 1.0 can carry; "\r" would be read back as "\n".
_XML_CHAR = st.characters(codec="utf-8", min_codepoint=0x20, exclude_characters="\ufffe\uffff")
_URL = st.builds(
    "http://{}.example/{}".format,
    st.text(alphabet="abc", min_size=1, max_size=3),
    st.text(alphabet=_XML_CHAR | st.sampled_from("\t\n"), max_size=20),
)


@given(st.lists(_URL, max_size=20))
def test_listed_urls_come_back_canonical_and_in_order(urls: list[str]) -> None:
    expected: dict[str, None] = {}
    for url in urls:
        try:
            expected[canonicalize(url.strip())] = None
        except ValueError:
            pass
    xml = urlset(*urls)
    assert parse_sitemap(xml).urls == tuple(expected)
    assert parse_sitemap(gzip.compress(xml)).urls == tuple(expected)
