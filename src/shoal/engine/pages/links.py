"""The links a crawl follows from a fetched page (``LinkProcessor``), sitemaps included.

Pure decisions (link extraction, decoding, scope, traps, sitemap parsing) come
from ``shoal.core``; this module strings them together for one page and counts
every URL it turns away, by reason. Link extraction is cheap enough to stay on
the event loop (or runs in a fetch process beside the HTTP: ``page_links``).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shoal.core.charset import sniff_encoding
from shoal.core.errors import InputError
from shoal.core.kinds import ErrorKind
from shoal.core.links import MAX_LINKS_PER_PAGE, PageLinks, extract_links, is_html
from shoal.core.model import FetchResult, NewRequest, Request
from shoal.core.scope import Scope
from shoal.core.sitemaps import parse_sitemap
from shoal.core.traps import TrapLimits, check_url
from shoal.core.urls import ParamFilter, canonicalize

__all__ = [
    "LinkProcessor",
    "MAX_SITEMAP_ENTRIES",
    "MAX_SITEMAP_NESTING",
    "LinkSettings",
    "looks_like_sitemap",
    "page_links",
]

log = logging.getLogger("shoal.engine.pages.links")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_V = TypeVar("_V")

#: Sitemap indexes listing sitemap indexes are followed this many levels down (the
#: sitemaps protocol intends one level; some sites use two or three).
MAX_SITEMAP_NESTING = 5
#: URLs a job's run takes from sitemaps (pages and child sitemaps), at most.
MAX_SITEMAP_ENTRIES = 100_000


def looks_like_sitemap(url: str, content_type: str | None, body: bytes) -> bool:
    """Sitemaps are recognised by their content, helped by their name."""
    head = body[:512].lstrip()
    if head.startswith(b"\x1f\x8b"):
        return url.endswith((".xml.gz", ".gz")) or "sitemap" in url
    if b"<urlset" in head or b"<sitemapindex" in head:
        return True
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media.endswith("xml") and "sitemap" in url.lower()


class _RecentMap(Generic[_V]):
    """A bounded memory of a value per URL lately admitted: two generations, like
    ``_RecentlyAdmitted``; when the young one fills, the old one is dropped. It carries
    what a URL inherits from the row that found it: the redirect chain that led to a
    redirect target (so that ``--max-redirects`` bounds a chain of rows), the nesting
    level of a child sitemap. A URL whose value was forgotten (a long crawl, another
    run) starts afresh, so what it bounds stays bounded, by a multiple of the limit."""

    def __init__(self, default: _V, generation: int = 65_536) -> None:
        self._default = default
        self._generation = generation
        self._young: dict[str, _V] = {}
        self._old: dict[str, _V] = {}

    def get(self, url: str) -> _V:
        value = self._young.get(url)
        if value is None:
            value = self._old.get(url, self._default)
        return value

    def put(self, url: str, value: _V) -> None:
        young = self._young
        if len(young) >= self._generation:
            self._old, self._young = young, {}
            young = self._young
        young[url] = value


class _RecentlyAdmitted:
    """A bounded memory of URLs already handed to the store: navigation links repeat on
    every page, and each repeat skipped here costs no scope check, fingerprint or store
    lookup. Two generations; when the young one fills, the old one is dropped. A URL is
    remembered only once admitted, never when turned away (it may be in scope at a
    smaller depth later), and the store deduplicates anyway, so a miss is only slower."""

    def __init__(self, generation: int = 65_536) -> None:
        self._generation = generation
        self._young: set[str] = set()
        self._old: set[str] = set()

    def __contains__(self, url: str) -> bool:
        return url in self._young or url in self._old

    def add(self, url: str) -> None:
        young = self._young
        if len(young) >= self._generation:
            self._old, self._young = young, set()
            young = self._young
        young.add(url)


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """What reading a page's links depends on (see ``LinkProcessor.settings``)."""

    strip_params: ParamFilter
    sort_query: bool
    obey_nofollow: bool
    robots_token: str
    max_links: int = MAX_LINKS_PER_PAGE
    max_depth: int | None = None  # the scope's: a page at it has no link to follow

    def links_wanted(self, depth: int) -> int:
        """How many links to read from a page at ``depth``: none at the depth limit,
        where every link would be thrown away (only its robots directives are read)."""
        if self.max_depth is not None and depth >= self.max_depth:
            return 0
        return self.max_links


def page_links(result: FetchResult, body: bytes, settings: LinkSettings) -> PageLinks | None:
    """The links of a fetched page, read where it was fetched (a fetch process), or None
    when ``LinkProcessor`` must see the body itself (not a 2xx page, or a sitemap).
    Sets ``result.encoding`` for an HTML page, as the processor would."""
    status = result.status
    if status is None or not 200 <= status < 300 or not body:
        return None
    page_url = result.final_url or result.url
    if looks_like_sitemap(page_url, result.content_type, body):
        return None
    return _read_links(result, body, page_url, settings)


def _read_links(
    result: FetchResult, body: bytes, page_url: str, settings: LinkSettings
) -> PageLinks:
    encoding = result.encoding
    if encoding is None and is_html(body, result.content_type):
        # Declared (BOM, header, <meta>) or UTF-8: what lexbor itself would use. No
        # detection here: it costs milliseconds, and this runs on the event loop.
        encoding = result.encoding = sniff_encoding(body, result.content_type, detect=False)[0]
    return extract_links(
        body,
        url=page_url,
        content_type=result.content_type,
        headers=result.headers,
        encoding=encoding,
        strip_params=settings.strip_params,
        sort_query=settings.sort_query,
        obey_nofollow=settings.obey_nofollow,
        robots_token=settings.robots_token,
        max_links=settings.links_wanted(result.depth),
    )


@dataclass
class LinkProcessor:
    """Follows links (and redirects, and sitemaps) within a scope, bounded by trap limits."""

    scope: Scope
    traps: TrapLimits
    strip_params: ParamFilter = ()
    sort_query: bool = False
    robots_token: str = "shoal"
    obey_nofollow: bool = True
    max_redirects: int = 10
    max_links: int = MAX_LINKS_PER_PAGE
    max_sitemap_nesting: int = MAX_SITEMAP_NESTING
    max_sitemap_entries: int = MAX_SITEMAP_ENTRIES
    recent: _RecentlyAdmitted = field(default_factory=_RecentlyAdmitted)
    chains: _RecentMap[tuple[str, ...]] = field(default_factory=lambda: _RecentMap(()))
    sitemap_levels: _RecentMap[int] = field(default_factory=lambda: _RecentMap(0))
    sitemap_entries: int = 0  # URLs taken from sitemaps so far

    @property
    def settings(self) -> LinkSettings:
        """How this processor reads links out of a page: what a fetch process needs to do
        that part for it (``page_links``)."""
        return LinkSettings(
            strip_params=self.strip_params,
            sort_query=self.sort_query,
            obey_nofollow=self.obey_nofollow,
            robots_token=self.robots_token,
            max_links=self.max_links,
            max_depth=self.scope.max_depth,
        )

    def __call__(
        self,
        request: Request,
        result: FetchResult,
        body: bytes | None,
        rejected: Counter[str],
        page: PageLinks | None = None,
    ) -> list[NewRequest]:
        """The requests to admit from this outcome. ``page``: its links as a fetch process
        read them already (``page_links``); then ``body`` may be None."""
        status = result.status
        if status is None:
            return []
        chain = self.chains.get(request.url)
        if chain:
            # The row says how it was reached, as a fetch that followed the chain would.
            result.redirects = chain
        page_url = result.final_url or result.url
        if page is not None:
            return self._from_page(page, page_url, request, result, rejected)
        if status in _REDIRECTS:
            return self._follow_redirect(request, result, page_url, chain, rejected)
        if not 200 <= status < 300 or not body:
            return []
        if looks_like_sitemap(page_url, result.content_type, body):
            return self._from_sitemap(request, result, body, rejected)
        page = _read_links(result, body, page_url, self.settings)
        return self._from_page(page, page_url, request, result, rejected)

    def chain_unknown(self, request: Request, result: FetchResult) -> bool:
        """Whether ``result`` is a redirect whose row was admitted where this processor did
        not see it (an earlier run, another worker, or longer ago than it remembers), from a
        row that may itself have redirected to it: the chain so far is then in the store,
        in that row (``recall_chain``), and ``max_redirects`` must count it."""
        return (
            result.status in _REDIRECTS
            and request.parent_url is not None
            and request.url not in self.recent
            and not self.chains.get(request.url)
        )

    def recall_chain(self, url: str, parent: FetchResult | None) -> None:
        """Take the chain that led to ``url`` from the stored row of its parent, if that row
        redirected to it."""
        if parent is not None and parent.status in _REDIRECTS and parent.final_url == url:
            self.chains.put(url, parent.redirects)

    def _from_page(
        self,
        page: PageLinks,
        page_url: str,
        request: Request,
        result: FetchResult,
        rejected: Counter[str],
    ) -> list[NewRequest]:
        if page.noindex:
            result.fields = {**(result.fields or {}), "noindex": True}
        if page.nofollow:
            rejected["nofollow"] += page.nofollow
        if page.truncated and page.links:
            rejected["links_truncated"] += 1  # pages, not links: the rest were never read
        return self._admit(list(page.links), request.depth + 1, result, rejected)

    def _from_sitemap(
        self, request: Request, result: FetchResult, body: bytes, rejected: Counter[str]
    ) -> list[NewRequest]:
        """A sitemap's pages are one level below it (like a page's links); an index's
        child sitemaps are at its own depth, one nesting level down, followed to
        ``max_sitemap_nesting`` levels. A run takes ``max_sitemap_entries`` URLs from
        sitemaps in all; the rest are counted as ``sitemap_limit``."""
        parsed = parse_sitemap(body)
        entries = list(parsed.urls)
        level = self.sitemap_levels.get(request.url)
        index = parsed.kind == "sitemapindex"
        if index and level >= self.max_sitemap_nesting:
            rejected["sitemap_too_deep"] += len(entries)
            return []
        room = max(0, self.max_sitemap_entries - self.sitemap_entries)
        if len(entries) > room:
            rejected["sitemap_limit"] += len(entries) - room
            del entries[room:]
        depth = request.depth if index else request.depth + 1
        admitted = self._admit(entries, depth, result, rejected)
        self.sitemap_entries += len(admitted)
        if index:
            for child in admitted:
                self.sitemap_levels.put(child.url, level + 1)
        return admitted

    def _follow_redirect(
        self,
        request: Request,
        result: FetchResult,
        page_url: str,
        chain: tuple[str, ...],
        rejected: Counter[str],
    ) -> list[NewRequest]:
        """A redirect is followed as a link, so that its target is deduplicated, scoped
        and scheduled politely like any other URL, at the same depth (a hop is not a
        level of the site). The row says where it went (``final_url``) and the chain so
        far (``redirects``, ending with this URL); the hop past ``max_redirects`` is not
        followed, and its row is ``too_many_redirects``."""
        location = _header(result.headers, "location")
        if location is None or self.max_redirects == 0:
            return []
        try:
            target = canonicalize(
                location, base=page_url, strip_params=self.strip_params, sort_query=self.sort_query
            )
        except InputError:
            rejected["invalid_url"] += 1
            return []
        hops = (*chain, request.url)
        result.final_url = target
        result.redirects = hops
        if len(hops) > self.max_redirects or target in hops:
            result.error_kind = ErrorKind.TOO_MANY_REDIRECTS
            result.error = (
                "redirect loop"
                if target in hops
                else f"more than {self.max_redirects} redirects in a row (--max-redirects)"
            )
            return []
        if request.depth == 0:
            self._adopt_seed(request.url, target)
        admitted = self._admit([target], request.depth, result, rejected)
        if admitted:
            self.chains.put(target, hops)
        return admitted

    def _adopt_seed(self, seed: str, target: str) -> None:
        """A seed that redirects (http → https, example.com → www.example.com, /docs →
        /docs/) brings its target into the scope; otherwise a host-scoped crawl would stop
        at the redirect, and a prefix-scoped one would take the seed's parent directory."""
        scope = self.scope
        if scope.adopt(seed, target) and scope.mode == "prefix":
            log.warning(
                "seed %s redirects to %s: the crawl is limited to %s",
                seed,
                target,
                scope.prefix_of(target),
            )

    def _admit(
        self, links: list[str], depth: int, result: FetchResult, rejected: Counter[str]
    ) -> list[NewRequest]:
        """The canonical ``links`` of ``result``'s page to admit at ``depth``."""
        scope, traps, recent = self.scope, self.traps, self.recent
        admitted: list[NewRequest] = []
        for url in links:
            if url in recent:
                continue
            reason = scope.decide(url, depth) or check_url(url, traps)
            if reason is not None:
                rejected[reason] += 1
                continue
            recent.add(url)
            admitted.append(NewRequest.for_url(url, depth=depth, parent_url=result.url))
        return admitted


def _header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    """A header's value as text: recorded header text is the server's bytes read as
    Latin-1; a URL in it is read as UTF-8, as browsers do, with undecodable bytes kept."""
    for key, value in headers:
        if key.lower() == name:
            try:
                return value.encode("latin-1").decode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                return value
    return None
