"""Links to follow from one fetched page: bytes in, canonical URLs out.

``extract_links`` parses HTML with selectolax's lexbor backend and returns the
page's outgoing links as canonical absolute http(s) URLs (``urls.canonicalize``),
deduplicated, in document order, together with the page's robots directives.

What counts as a link: ``a[href]``, ``area[href]``, ``link[href]`` whose ``rel``
has the token ``next``, ``prev`` (or the common misspelling ``previous``),
``frame[src]`` and ``iframe[src]``. The first ``<base href>`` (resolved
against the page URL) is the base of relative links — for every link, also
those before it, as in a browser. A ``<base href>`` that does not resolve to
an http(s) URL is ignored and the page URL is the base.

What is dropped, and counted: an empty or fragment-only href, or one with a
scheme other than http(s) (``javascript:``, ``mailto:``...) is ``skipped``; one
that ``canonicalize`` rejects (bad host, bad port) is ``invalid``; an
``a``/``area`` with ``rel="nofollow"`` is ``nofollow`` (when obeying nofollow).

Robots directives come from ``<meta name="robots">``, ``<meta name=TOKEN>``
(the crawler's token, default ``shoal``) and ``X-Robots-Tag`` response
headers, whose directives may be scoped to one crawler (``otherbot: noindex``
applies to otherbot only). ``nofollow`` or ``none`` sets ``nofollow_page``
(and, when obeying nofollow, no link is returned); ``noindex`` or ``none``
sets ``noindex``. ``obey_nofollow=False`` ignores every nofollow, per link and
per page; the flags still say what the page asked for.

Decoding: the charset named by ``encoding`` (or else by ``content_type``) wins,
unless the body starts with a byte-order mark; otherwise the document's own
``<meta charset>`` is honoured, and UTF-8 is the fallback. Bytes invalid in
the chosen encoding become U+FFFD: garbage in gives fewer links, never an
exception.

Only HTML is parsed: ``text/html`` and ``application/xhtml+xml``; without a
content type, a body that starts (after whitespace and a byte-order mark) with
``<!doctype html`` or ``<html`` is taken as HTML. Anything else has no links.

Link-dense pages: at most ``max_links`` distinct links are taken from a page
(``MAX_LINKS_PER_PAGE`` by default; 0 reads only the robots directives, for a page
whose links would not be followed), and ``truncated`` says when more were left.
A page that is link-dense or whose markup would make lexbor quadratic is not
parsed but scanned (``core.markup``), up to ``max_links`` link elements.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import NamedTuple, Protocol, TypeAlias

from selectolax.lexbor import LexborHTMLParser

from shoal.core.charset import codec_for, media_type
from shoal.core.errors import InputError
from shoal.core.markup import (
    DENSE_TAGS,
    SCREEN_ABOVE,
    ScannedElement,
    looks_hazardous,
    scan_elements,
)
from shoal.core.urls import ParamFilter, canonicalize

__all__ = ["MAX_LINKS_PER_PAGE", "PageLinks", "extract_links", "is_html"]

#: Distinct links taken from one page, at most (the rest: ``PageLinks.truncated``).
MAX_LINKS_PER_PAGE = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class PageLinks:
    """The links of one page and what the page says about being crawled.

    ``links`` are canonical absolute http(s) URLs in first-seen order, without
    duplicates. ``base`` is the canonical URL relative links were resolved
    against. The counts are per occurrence in the page.
    """

    links: tuple[str, ...]
    base: str
    nofollow_page: bool = False
    noindex: bool = False
    skipped: int = 0
    invalid: int = 0
    nofollow: int = 0
    truncated: bool = False
    """Whether the page had links past ``max_links`` that were not read."""


class _Element(Protocol):
    """An element of interest: a lexbor node, or what the fallback scanner found."""

    @property
    def tag(self) -> str | None: ...

    @property
    def attributes(self) -> Mapping[str, str | None]: ...  # None: a valueless attribute


_Source: TypeAlias = tuple[str | None, _Element]  # (tag, element)


_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_SNIFF_HTML = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\n\r\f]*(?:<!doctype html|<html)", re.IGNORECASE)
_SNIFF_BYTES = 512
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)

# One tree walk in document order; base and meta are sorted out in Python.
_SELECTOR = "a[href],area[href],link[href][rel],frame[src],iframe[src],base[href],meta[name]"
_FOLLOW_RELS = frozenset({"next", "prev", "previous"})

# X-Robots-Tag directives that take a value after a colon, so that their name
# is not mistaken for a crawler's token ("unavailable_after: 25 Jun 2030").
_VALUE_DIRECTIVES = frozenset(
    {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}
)
_AGENT_PREFIX = re.compile(r"([A-Za-z0-9_.\-]+)\s*:\s*(.*)", re.DOTALL)
_DIRECTIVE_SPLIT = re.compile(r"[\s,]+")

# The URL parser strips C0 controls and spaces at both ends (WHATWG), and
# removes tabs and newlines anywhere.
_C0_AND_SPACE = "".join(chr(i) for i in range(0x21))
_TAB_NEWLINE = re.compile(r"[\t\n\r]")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")

# Outcomes of one href other than a URL; memoised per page with the URLs.
_SKIPPED = 0
_INVALID = 1


def extract_links(
    body: bytes,
    *,
    url: str,
    content_type: str | None,
    headers: Sequence[tuple[str, str]] = (),
    encoding: str | None = None,
    strip_params: ParamFilter = (),
    sort_query: bool = False,
    obey_nofollow: bool = True,
    robots_token: str = "shoal",
    max_links: int = MAX_LINKS_PER_PAGE,
) -> PageLinks:
    """Extract the links to follow from a fetched page (at most ``max_links``).

    ``url`` is the page's final URL (after redirects); it is the base of
    relative links unless the page has a ``<base href>``. ``headers`` are the
    response headers (only ``X-Robots-Tag`` is read). ``encoding`` is a charset
    label that overrides the one in ``content_type``. ``strip_params`` and
    ``sort_query`` are passed to ``canonicalize`` for every link (results are
    memoised across pages, so a ``strip_params`` predicate must be pure). Raises
    ``InputError`` only when ``url`` itself is not an http(s) URL; the body
    never makes it raise.
    """
    page = canonicalize(url)
    token = robots_token.strip().lower()
    noindex, nofollow_page = _header_directives(headers, token)
    if (nofollow_page and noindex and obey_nofollow) or not _is_html(body, content_type):
        return PageLinks(links=(), base=page, nofollow_page=nofollow_page, noindex=noindex)

    elements, cut = _elements(body, encoding, content_type, max_links)
    base, meta_noindex, meta_nofollow, sources = _read_head(elements, page, token)
    noindex = noindex or meta_noindex
    nofollow_page = nofollow_page or meta_nofollow
    if nofollow_page and obey_nofollow:
        return PageLinks(links=(), base=base, nofollow_page=True, noindex=noindex)
    found, skipped, invalid, nofollow, more = _collect(
        sources,
        _Base.of(base),
        _canonicalizer(strip_params, sort_query),
        obey_nofollow,
        max_links,
    )
    return PageLinks(
        links=found,
        base=base,
        nofollow_page=nofollow_page,
        noindex=noindex,
        skipped=skipped,
        invalid=invalid,
        nofollow=nofollow,
        truncated=cut or more,
    )


def _read_head(
    elements: Sequence[_Element], page: str, token: str
) -> tuple[str, bool, bool, list[_Source]]:
    """``(base, noindex, nofollow, link elements)`` from the page's elements.

    The base and the robots meta tags are read first: they apply to every
    link, also to the ones before them.
    """
    base: str | None = None
    noindex = nofollow = False
    meta_names = ("robots", token) if token else ("robots",)
    sources: list[_Source] = []
    for element in elements:
        tag = element.tag
        if tag == "meta":
            attrs = element.attributes
            name = attrs.get("name")
            if name is not None and name.strip().lower() in meta_names:
                meta_noindex, meta_nofollow = _directives(attrs.get("content") or "")
                noindex = noindex or meta_noindex
                nofollow = nofollow or meta_nofollow
        elif tag == "base":
            if base is None:
                base = _resolve_base(element.attributes.get("href") or "", page)
        else:
            sources.append((tag, element))
    return (page if base is None else base), noindex, nofollow, sources


def _collect(
    sources: list[_Source],
    base: _Base,
    canonical: Callable[[str], str | int],
    obey_nofollow: bool,
    max_links: int,
) -> tuple[tuple[str, ...], int, int, int, bool]:
    """``(links, skipped, invalid, nofollow, truncated)`` of the link elements: no more
    than ``max_links`` links, and no element read past them."""
    found: dict[str, None] = {}
    memo: dict[str, str | int] = {}
    skipped = invalid = nofollow = 0
    if max_links <= 0:
        return (), 0, 0, 0, bool(sources)
    for tag, element in sources:
        if len(found) >= max_links:
            return tuple(found), skipped, invalid, nofollow, True
        # Attributes are read here, not in the first loop: a dict that dies at
        # once is cheaper than thousands kept alive (and traced by the GC).
        attrs = element.attributes
        if tag == "a" or tag == "area":
            raw = attrs.get("href")
            if raw is None:  # an SVG link (or a valueless href)
                raw = attrs.get("xlink:href")
            if obey_nofollow:
                rel = attrs.get("rel")
                if rel is not None and "nofollow" in rel.lower().split():
                    nofollow += 1
                    continue
        elif tag == "link":
            rel = attrs.get("rel")
            if rel is None or _FOLLOW_RELS.isdisjoint(rel.lower().split()):
                continue
            raw = attrs.get("href")
        else:
            raw = attrs.get("src")
        if raw is None:  # a valueless attribute, <a href>
            raw = ""
        outcome = memo.get(raw)
        if outcome is None:
            outcome = memo[raw] = _resolve(raw, base, canonical)
        if isinstance(outcome, str):
            found[outcome] = None
        elif outcome == _SKIPPED:
            skipped += 1
        else:
            invalid += 1
    return tuple(found), skipped, invalid, nofollow, False


# --- content type and decoding ---


def is_html(body: bytes, content_type: str | None) -> bool:
    """Whether the page is HTML: by its media type, or else by how its body starts."""
    return _is_html(body, content_type)


def _is_html(body: bytes, content_type: str | None) -> bool:
    if content_type is not None and content_type.strip():
        return media_type(content_type)[0] in _HTML_TYPES
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        head = body[:_SNIFF_BYTES].decode("utf-16", "replace").encode("utf-8", "replace")
        return _SNIFF_HTML.match(head) is not None
    return _SNIFF_HTML.match(body) is not None


def _transport_codec(body: bytes, encoding: str | None, content_type: str | None) -> str | None:
    """The codec the transport layer names, unless a byte-order mark overrides it."""
    label = encoding
    if label is None and content_type is not None:
        label = media_type(content_type)[1]
    if label is None or body.startswith(_BOMS):
        return None
    return codec_for(label)


def _decode(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec, "replace")
    except (LookupError, ValueError, UnicodeError):  # some codecs reject "replace"
        return None


# --- elements ---


def _elements(
    body: bytes, encoding: str | None, content_type: str | None, max_links: int
) -> tuple[Sequence[_Element], bool]:
    """The link, base and meta elements of the document, in document order, and whether
    link elements were left unread (a dense page, scanned up to ``max_links`` links)."""
    codec = _transport_codec(body, encoding, content_type)
    if len(body) > SCREEN_ABOVE:
        if body.count(b"<") > DENSE_TAGS:
            return _scan_fallback(body, codec, max_links)
        if looks_hazardous(body):
            return _scan_fallback(body, codec, None)
    try:
        if codec is None:
            # lexbor sniffs: byte-order mark, then <meta charset>, then UTF-8.
            tree = LexborHTMLParser(body, encoding=True)
        elif codec == "utf-8":
            # lexbor reads bytes as UTF-8, and selectolax decodes what it
            # returns with errors="replace": no need to decode here.
            tree = LexborHTMLParser(body)
        else:
            text = _decode(body, codec)
            tree = LexborHTMLParser(body, encoding=True) if text is None else LexborHTMLParser(text)
    except ValueError:  # larger than selectolax accepts (2.5 GB)
        return [], False
    # (node.attributes is one dict: cheaper than two lookups through node.attrs.)
    return tree.css(_SELECTOR), False


def _scan_fallback(
    body: bytes, codec: str | None, max_links: int | None
) -> tuple[list[ScannedElement], bool]:
    """``markup.scan_elements`` of the decoded body, for hazardous markup or a dense page."""
    if codec is None:
        codec = "utf-16" if body.startswith(_BOMS[1:]) else "utf-8-sig"
    text = _decode(body, codec) or body.decode("utf-8", "replace")
    return scan_elements(text, max_links)


# --- robots directives ---


def _directives(text: str) -> tuple[bool, bool]:
    """``(noindex, nofollow)`` from a comma-separated robots directive list."""
    noindex = nofollow = False
    for directive in _DIRECTIVE_SPLIT.split(text.lower()):
        if directive == "none":
            noindex = nofollow = True
        elif directive == "noindex":
            noindex = True
        elif directive == "nofollow":
            nofollow = True
    return noindex, nofollow


def _header_directives(headers: Sequence[tuple[str, str]], token: str) -> tuple[bool, bool]:
    """``(noindex, nofollow)`` from the X-Robots-Tag headers that apply to ``token``.

    Within one header value, ``agent: directive`` scopes that directive and the
    ones after it to ``agent``, until the next ``agent:``.
    """
    noindex = nofollow = False
    for name, value in headers:
        if name.lower() != "x-robots-tag":
            continue
        agent: str | None = None
        for part in value.split(","):
            prefixed = _AGENT_PREFIX.match(part.strip())
            if prefixed is not None and prefixed.group(1).lower() not in _VALUE_DIRECTIVES:
                agent = prefixed.group(1).lower()
                part = prefixed.group(2)
            if agent is None or agent == token:
                part_noindex, part_nofollow = _directives(part)
                noindex = noindex or part_noindex
                nofollow = nofollow or part_nofollow
    return noindex, nofollow


# --- resolving hrefs ---


def _resolve_base(href: str, page: str) -> str:
    try:
        return canonicalize(href, base=page)
    except InputError:
        return page


class _Base(NamedTuple):
    """A canonical base URL cut into the prefixes that relative hrefs extend.

    Concatenating a prefix with a relative href and canonicalizing the result
    equals resolving the href against the base (a canonical base has no
    fragment and no dot segments), and the concatenation usually takes
    ``canonicalize``'s fast path: a third of the cost of a relative parse.
    """

    url: str
    scheme: str  # "https:", for "//host/path"
    origin: str  # "https://host:port", for "/path"
    directory: str  # "https://host/dir/", for "path"
    without_query: str  # "https://host/dir/page", for "?query"

    @classmethod
    def of(cls, url: str) -> _Base:
        without_query = url.partition("?")[0]
        authority_at = without_query.index("://") + 3
        path_at = without_query.index("/", authority_at)
        return cls(
            url=url,
            scheme=url[: authority_at - 2],
            origin=without_query[:path_at],
            directory=without_query[: without_query.rindex("/") + 1],
            without_query=without_query,
        )


def _resolve(raw: str, base: _Base, canonical: Callable[[str], str | int]) -> str | int:
    """The canonical URL of one href, or ``_SKIPPED`` / ``_INVALID``."""
    href = raw.strip(_C0_AND_SPACE)
    if "\t" in href or "\n" in href or "\r" in href:
        href = _TAB_NEWLINE.sub("", href)
    if not href:
        return _SKIPPED
    first = href[0]
    if first == "/":
        if href[1:2] in ("/", "\\"):
            absolute = base.scheme + href
        else:
            absolute = base.origin + href
    elif href.startswith(("http://", "https://")):
        absolute = href
    elif first == "#":
        return _SKIPPED
    elif first == "?":
        absolute = base.without_query + href
    elif first == "\\" or ":" in href:
        scheme = _SCHEME.match(href)
        if scheme is not None and scheme.group(1).lower() not in ("http", "https"):
            return _SKIPPED
        # Rare forms ("\\host", "HTTP://...", "http:path"): the parser resolves them.
        try:
            absolute = canonicalize(href, base=base.url)
        except InputError:
            return _INVALID
    else:
        absolute = base.directory + href
    return canonical(absolute)


_StripKey: TypeAlias = tuple[str, ...] | Callable[[str], bool]


def _canonicalizer(strip_params: ParamFilter, sort_query: bool) -> Callable[[str], str | int]:
    """The canonicalizer of absolute link URLs for one configuration, memoised."""
    key: _StripKey
    if isinstance(strip_params, str):
        key = (strip_params,)
    elif isinstance(strip_params, Collection):
        key = tuple(strip_params)
    else:
        key = strip_params
    try:
        return _memoised_canonicalizer(key, sort_query)
    except TypeError:  # an unhashable predicate: no memo
        return partial(_canonical, strip_params=key, sort_query=sort_query)


@lru_cache(maxsize=8)
def _memoised_canonicalizer(
    strip_params: _StripKey, sort_query: bool
) -> Callable[[str], str | int]:
    # Navigation, headers and footers repeat the same links on every page of a
    # site, so most links of a crawl have been canonicalized before.
    return lru_cache(maxsize=16384)(
        partial(_canonical, strip_params=strip_params, sort_query=sort_query)
    )


def _canonical(url: str, *, strip_params: _StripKey, sort_query: bool) -> str | int:
    """``canonicalize`` an absolute URL, or ``_INVALID``."""
    try:
        return canonicalize(url, strip_params=strip_params, sort_query=sort_query)
    except InputError:
        return _INVALID
