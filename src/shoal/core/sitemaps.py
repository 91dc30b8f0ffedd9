"""Sitemaps (sitemaps.org protocol 0.9): XML url sets and indexes, plain text, gzip.

``parse_sitemap`` takes a fetched sitemap's bytes and returns the page URLs of
a ``<urlset>`` or a text sitemap, or the child sitemap URLs of a
``<sitemapindex>``, canonicalized (``urls.canonicalize``); entries that are not
absolute http(s) URLs, or are longer than 8,192 characters, are dropped and
counted. Duplicates are listed once.

Bounded work for hostile input:

* gzip (detected by its magic bytes ``1f 8b``, any number of members) is
  inflated in 64 KiB steps with ``zlib.decompressobj(...).decompress(data,
  max_length)``, and never past ``max_bytes`` of output: a gzip bomb costs at
  most ``max_bytes`` of inflating and a few chunks of memory, because the
  output is parsed as it comes and never joined;
* XML is read by expat as a stream of events, no tree is built; a document
  type declaration (``<!DOCTYPE``, and with it every ``<!ENTITY``) is refused
  as soon as expat meets it, so no entity is defined, expanded or fetched;
* at most ``max_urls`` distinct URLs are kept: parsing stops there.

Either cap sets ``truncated``. Damage (malformed XML, a broken or cut-off
gzip stream, a DOCTYPE) sets ``error``; the URLs read before it are kept, so a
sitemap cut off mid-transfer still yields its first entries. ``kind`` is
``invalid`` when the root element was never recognised, and for a text
sitemap without a single URL.

Namespaces are matched by prefix, not resolved: the ``<loc>`` of a
``<url>``/``<sitemap>`` entry counts when the three elements carry the same
prefix as the root (usually none). So ``xmlns="http://www.sitemaps.org/..."``,
a missing or wrong namespace, and undeclared extension prefixes (a common
mistake that a namespace-aware parser rejects outright) all work, while
extension elements such as ``<image:loc>`` are never taken for page URLs.

A document that starts (after a UTF-8 BOM and whitespace) with ``<``, or
with a UTF-16 BOM, is XML; anything else is a text sitemap: one URL per line,
UTF-8. RSS and Atom feeds, which sitemaps.org also allows, are ``invalid``
here. Whether a listed URL may be crawled (same host as the sitemap, scope,
robots.txt) is decided elsewhere.
"""

from __future__ import annotations

import codecs
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal
from xml.parsers import expat

from shoal.core.errors import ConfigError
from shoal.core.urls import canonicalize

__all__ = ["SitemapKind", "SitemapParse", "parse_sitemap"]

SitemapKind = Literal["urlset", "sitemapindex", "text", "invalid"]

MiB = 1024 * 1024
_CHUNK = 64 * 1024
_MAX_URL_CHARS = 8192  # sitemaps.org says under 2,048; some sites go past it
_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_WHITESPACE = b" \t\r\n"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_ENTRY = {"urlset": "url", "sitemapindex": "sitemap"}


@dataclass(frozen=True, kw_only=True, slots=True)
class SitemapParse:
    """What a sitemap lists: page URLs (``urlset``, ``text``) or sitemap URLs (``sitemapindex``).

    ``dropped`` counts entries that were not absolute http(s) URLs;
    ``truncated`` says a cap (``max_bytes`` or ``max_urls``) cut the document
    short; ``error`` says why the document is damaged or was refused.
    """

    kind: SitemapKind
    urls: tuple[str, ...] = ()
    dropped: int = 0
    truncated: bool = False
    error: str | None = None


def parse_sitemap(
    data: bytes, *, max_bytes: int = 50 * MiB, max_urls: int = 50_000
) -> SitemapParse:
    """Parse a sitemap: XML or text, plain or gzip-compressed. Never raises on bad data.

    ``max_bytes`` caps the (decompressed) document; ``max_urls`` the number of
    distinct URLs returned. The defaults are the protocol's own limits.
    """
    if max_bytes < 1 or max_urls < 1:
        raise ConfigError(f"max_bytes and max_urls must be ≥ 1, got {max_bytes}, {max_urls}")
    reader = _Reader(data, max_bytes)
    chunks = reader.chunks()
    head = _skip_preamble(chunks)
    collector = _Collector(max_urls)
    error: str | None
    if not head:
        kind: SitemapKind = "invalid"
        error = reader.error or "empty document"
    elif head.startswith(b"<") or head.startswith(_UTF16_BOMS):
        kind, error = _parse_xml(head, chunks, reader, collector)
    else:
        kind, error = _parse_text(head, chunks, reader, collector)
        if not collector.urls:
            kind, error = "invalid", error or "not a sitemap: no line is an http(s) URL"
    return SitemapParse(
        kind=kind,
        urls=tuple(collector.urls),
        dropped=collector.dropped,
        truncated=reader.truncated or collector.full,
        error=error,
    )


class _Full(Exception):
    """``max_urls`` distinct URLs are in: stop reading."""


class _Refused(Exception):
    """The document is not one we read (a DOCTYPE, or not a sitemap at all)."""


class _Reader:
    """The document's bytes in chunks, gunzipped when gzip, never more than ``max_bytes``."""

    def __init__(self, data: bytes, max_bytes: int) -> None:
        self._data = data
        self._budget = max_bytes
        self.truncated = False
        self.error: str | None = None

    def chunks(self) -> Iterator[bytes]:
        if self._data.startswith(_GZIP_MAGIC):
            return self._inflated()
        return self._plain()

    def _plain(self) -> Iterator[bytes]:
        data = self._data
        end = min(len(data), self._budget)
        self.truncated = len(data) > end
        for start in range(0, end, _CHUNK):
            yield data[start : min(start + _CHUNK, end)]

    def _inflated(self) -> Iterator[bytes]:
        # Input is fed in slices too: each call's unconsumed_tail is a copy of
        # what is left of its input, which must stay small.
        data = self._data
        position = 0
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            while True:
                if inflater.eof:  # a member ended; another may follow (RFC 1952 §2.2)
                    position -= len(inflater.unused_data)
                    if not data.startswith(_GZIP_MAGIC, position):
                        return  # the end, or trailing bytes that are not gzip: ignored
                    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                if position >= len(data):
                    self.error = "gzip stream ends early"
                    return
                pending = data[position : position + _CHUNK]
                position += len(pending)
                while pending and not inflater.eof:
                    # One byte past the budget tells "exactly full" from "too big".
                    out = inflater.decompress(pending, min(_CHUNK, self._budget + 1))
                    if len(out) > self._budget:
                        self.truncated = True
                        if self._budget:
                            yield out[: self._budget]
                        return
                    self._budget -= len(out)
                    if out:
                        yield out
                    elif len(inflater.unconsumed_tail) == len(pending):
                        self.error = "bad gzip data: no progress"  # zlib never does this
                        return
                    pending = inflater.unconsumed_tail
        except zlib.error as error:
            self.error = f"bad gzip data: {error}"


def _skip_preamble(chunks: Iterator[bytes]) -> bytes:
    """The document from its first significant byte: no UTF-8 BOM, no leading whitespace."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(_UTF8_BOM):
            break
    if head.startswith(_UTF8_BOM):
        head = head[len(_UTF8_BOM) :]
    head = head.lstrip(_WHITESPACE)
    while not head:
        more = next(chunks, None)
        if more is None:
            return b""
        head = more.lstrip(_WHITESPACE)
    return head


class _Collector:
    def __init__(self, max_urls: int) -> None:
        self.urls: dict[str, None] = {}  # insertion-ordered set
        self.dropped = 0
        self.full = False
        self._max_urls = max_urls

    def add(self, text: str | None) -> None:
        """Keep ``text`` as a URL, or count it dropped (``None``: too long to consider)."""
        if text is None or len(text) > _MAX_URL_CHARS:
            self.dropped += 1
            return
        try:
            url = canonicalize(text.strip())
        except ValueError:  # InputError: relative, not http(s), or no URL at all
            self.dropped += 1
            return
        if url in self.urls:
            return
        if len(self.urls) >= self._max_urls:
            self.full = True
            raise _Full
        self.urls[url] = None


# --- XML ---


class _XmlHandler:
    """expat callbacks that pick ``root > entry > loc`` texts out of the event stream."""

    def __init__(self, collector: _Collector) -> None:
        self.kind: SitemapKind = "invalid"
        self._collector = collector
        self._depth = 0
        self._prefix = ""
        self._entry = ""
        self._in_entry = False
        self._loc: list[str] | None = None  # text of the <loc> being read
        self._loc_chars = 0
        self._loc_too_long = False

    def parser(self) -> expat.XMLParserType:
        parser = expat.ParserCreate()  # no namespace processing: see the module docstring
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = self._doctype
        parser.EntityDeclHandler = self._entity
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        return parser

    def _doctype(self, *_: object) -> None:
        raise _Refused("refused: the document has a DOCTYPE (entities are not expanded)")

    def _entity(self, *_: object) -> None:
        raise _Refused("refused: the document declares an entity")

    def _start(self, name: str, _attributes: dict[str, str]) -> None:
        self._depth += 1
        prefix, _, local = name.rpartition(":")
        if self._depth == 1:
            if local not in _ENTRY:
                raise _Refused(f"not a sitemap: the root element is <{name}>")
            self.kind = "urlset" if local == "urlset" else "sitemapindex"
            self._prefix, self._entry = prefix, _ENTRY[local]
        elif self._depth == 2:
            self._in_entry = prefix == self._prefix and local == self._entry
        elif self._depth == 3 and self._in_entry and prefix == self._prefix and local == "loc":
            self._loc, self._loc_chars, self._loc_too_long = [], 0, False

    def _end(self, _name: str) -> None:
        if self._depth == 3 and self._loc is not None:
            text = None if self._loc_too_long else "".join(self._loc)
            self._loc = None
            self._collector.add(text)
        elif self._depth == 2:
            self._in_entry = False
        self._depth -= 1

    def _text(self, data: str) -> None:
        if self._loc is None or self._loc_too_long:
            return
        self._loc_chars += len(data)
        if self._loc_chars > _MAX_URL_CHARS:
            self._loc_too_long = True
            self._loc.clear()
        else:
            self._loc.append(data)


def _parse_xml(
    head: bytes, chunks: Iterator[bytes], reader: _Reader, collector: _Collector
) -> tuple[SitemapKind, str | None]:
    handler = _XmlHandler(collector)
    parser = handler.parser()
    error: str | None = None
    try:
        parser.Parse(head, False)
        for chunk in chunks:
            parser.Parse(chunk, False)
        if not reader.truncated and reader.error is None:
            parser.Parse(b"", True)  # a document cut short by a cap is not malformed
    except _Full:
        pass
    except _Refused as refusal:
        error = str(refusal)
    except expat.ExpatError as malformed:
        error = f"malformed XML: {malformed}"
    except (LookupError, ValueError) as unsupported:  # from the declared encoding's codec
        error = f"unsupported XML encoding: {unsupported}"
    if reader.error is not None:
        error = error or reader.error
    return handler.kind, error


# --- text ---


def _parse_text(
    head: bytes, chunks: Iterator[bytes], reader: _Reader, collector: _Collector
) -> tuple[SitemapKind, str | None]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    line = ""  # the start of the line being read
    too_long = False  # the line being read is past the URL length cap: skip to its end
    try:
        for chunk in _chain(head, chunks):
            pieces = _LINE_BREAK.split(decoder.decode(chunk))
            for ending in pieces[:-1]:
                if not too_long:
                    _text_line(line + ending, collector)
                line, too_long = "", False
            if not too_long:
                line += pieces[-1]
                if len(line) > _MAX_URL_CHARS:
                    collector.add(None)
                    line, too_long = "", True
        if not too_long and not reader.truncated and reader.error is None:
            _text_line(line + decoder.decode(b"", final=True), collector)
    except _Full:
        pass
    return "text", reader.error


def _chain(head: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield head
    yield from chunks


def _text_line(line: str, collector: _Collector) -> None:
    line = line.strip()
    if line:
        collector.add(line)
