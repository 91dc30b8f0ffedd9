"""Link following: turn a fetched page into the requests a crawl admits next.

Pure decisions (link extraction, scope, traps, sitemap parsing) come from
``shoal.core``; this module strings them together for one page and counts
every URL it turns away, by reason.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

from shoal.core.errors import InputError
from shoal.core.links import extract_links
from shoal.core.model import FetchResult, NewRequest, Request
from shoal.core.scope import Scope
from shoal.core.sitemaps import parse_sitemap
from shoal.core.traps import TrapLimits, check_url
from shoal.core.urls import ParamFilter, canonicalize

__all__ = ["LinkProcessor", "looks_like_sitemap"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def looks_like_sitemap(url: str, content_type: str | None, body: bytes) -> bool:
    """Sitemaps are recognised by their content, helped by their name."""
    head = body[:512].lstrip()
    if head.startswith(b"\x1f\x8b"):
        return url.endswith((".xml.gz", ".gz")) or "sitemap" in url
    if b"<urlset" in head or b"<sitemapindex" in head:
        return True
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media.endswith("xml") and "sitemap" in url.lower()


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


@dataclass
class LinkProcessor:
    """Follows links (and redirects, and sitemaps) within a scope, bounded by trap limits."""

    scope: Scope
    traps: TrapLimits
    strip_params: ParamFilter = ()
    sort_query: bool = False
    robots_token: str = "shoal"
    obey_nofollow: bool = True
    recent: _RecentlyAdmitted = field(default_factory=_RecentlyAdmitted)

    def __call__(
        self, request: Request, result: FetchResult, body: bytes, rejected: Counter[str]
    ) -> list[NewRequest]:
        status = result.status
        if status is None:
            return []
        page_url = result.final_url or result.url
        if status in _REDIRECTS:
            # Redirects are followed as links, so that their targets are deduplicated,
            # scoped and scheduled politely like any other URL; same depth: a hop is
            # not a level of the site.
            location = _header(result.headers, "location")
            if location is None:
                return []
            if request.depth == 0:
                self._adopt_seed(location, page_url)
            return self._admit(
                [location], page_url, request.depth, result, rejected, canonical=False
            )
        if not 200 <= status < 300 or not body:
            return []
        if looks_like_sitemap(page_url, result.content_type, body):
            parsed = parse_sitemap(body)
            if parsed.kind == "sitemapindex":
                return self._admit(list(parsed.urls), page_url, request.depth, result, rejected)
            return self._admit(list(parsed.urls), page_url, request.depth + 1, result, rejected)
        page = extract_links(
            body,
            url=page_url,
            content_type=result.content_type,
            headers=result.headers,
            strip_params=self.strip_params,
            sort_query=self.sort_query,
            obey_nofollow=self.obey_nofollow,
            robots_token=self.robots_token,
        )
        if page.noindex:
            result.fields = {**(result.fields or {}), "noindex": True}
        if page.nofollow:
            rejected["nofollow"] += page.nofollow
        return self._admit(list(page.links), page_url, request.depth + 1, result, rejected)

    def _adopt_seed(self, location: str, base: str) -> None:
        """A seed that redirects (http → https, example.com → www.example.com) brings its
        target into the scope; otherwise a host-scoped crawl would stop at the redirect."""
        try:
            target = canonicalize(location, base=base)
        except InputError:
            return
        if target not in self.scope.seeds:
            self.scope = dataclasses.replace(self.scope, seeds=(*self.scope.seeds, target))

    def _admit(
        self,
        links: list[str],
        base: str,
        depth: int,
        result: FetchResult,
        rejected: Counter[str],
        *,
        canonical: bool = True,
    ) -> list[NewRequest]:
        scope, traps, recent = self.scope, self.traps, self.recent
        admitted: list[NewRequest] = []
        for link in links:
            if canonical:
                if link in recent:
                    continue
                url = link
            else:
                try:
                    url = canonicalize(
                        link, base=base, strip_params=self.strip_params, sort_query=self.sort_query
                    )
                except InputError:
                    rejected["invalid_url"] += 1
                    continue
            reason = scope.decide(url, depth) or check_url(url, traps)
            if reason is not None:
                rejected[reason] += 1
                continue
            recent.add(url)
            admitted.append(NewRequest.for_url(url, depth=depth, parent_url=result.url))
        return admitted


def _header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
