"""The synthetic site as pure data: its shape, its link graph, what a crawl must find.

Nothing here does I/O or reads a clock. Every choice (which pages a page links
to, which pages fail, which href form a link uses) is a function of the
:class:`SiteSpec` and the page's coordinates, hashed with BLAKE2b so the graph
is the same in every process, on every Python version, whatever
``PYTHONHASHSEED`` says.

Coordinates: host *h* is the *h*-th address the server binds (``127.0.0.{first_address + h}``
by default); its pages are ``/`` (the index) and ``/page/0`` … ``/page/{pages-1}``.
A :class:`PageRef` names one of them; ``page=None`` is the index.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from shoal.core.errors import ConfigError

__all__ = [
    "INDEX_LINKS",
    "PageRef",
    "SiteSpec",
    "expected_pages",
    "href_for",
    "index_links",
    "is_error_page",
    "links_from",
    "page_links",
    "reachable",
]

#: How many pages the index links to: page 0 plus this many minus one others.
INDEX_LINKS = 4
_MAX_LAST_OCTET = 254


ROBOTS_FAULTS = ("stall", "drip", "500")


@dataclass(frozen=True, kw_only=True, slots=True)
class SiteSpec:
    """The shape of a synthetic site; the same spec always yields the same site.

    ``hosts`` hosts each serve ``pages`` pages of ``links_per_page`` links;
    ``cross_host_links`` is the probability that a (non-chain) link points to
    another host. ``error_rate`` is the fraction of ``/page/`` URLs that always
    answer 500. ``latency_ms`` delays every page; ``page_bytes`` pads every page
    to about that size. ``robots`` is the robots.txt body of every host (None:
    404); ``robots_faults`` makes some hosts' robots.txt misbehave instead, as
    ``(host, fault)`` pairs: ``"stall"`` (headers, then silence), ``"drip"`` (one byte
    a second), ``"500"``. Hosts bind ``127.0.0.{first_address}``, ``127.0.0.{first_address + 1}``, …
    """

    hosts: int = 1
    pages: int = 100
    links_per_page: int = 5
    cross_host_links: float = 0.0
    seed: int = 0
    latency_ms: float = 0.0
    error_rate: float = 0.0
    robots: str | None = None
    robots_faults: tuple[tuple[int, str], ...] = ()
    sitemaps: bool = True
    page_bytes: int = 0
    first_address: int = 2

    def __post_init__(self) -> None:
        _check_int("hosts", self.hosts, minimum=1)
        _check_int("pages", self.pages, minimum=1)
        _check_int("links_per_page", self.links_per_page, minimum=1)
        _check_int("seed", self.seed, minimum=None)
        _check_int("page_bytes", self.page_bytes, minimum=0)
        _check_int("first_address", self.first_address, minimum=1)
        _check_fraction("cross_host_links", self.cross_host_links)
        _check_fraction("error_rate", self.error_rate)
        if not isinstance(self.latency_ms, int | float) or not 0 <= self.latency_ms < 300_000:
            raise ConfigError(f"latency_ms must be in [0, 300000), got {self.latency_ms!r}")
        if self.robots is not None and not isinstance(self.robots, str):
            raise ConfigError(f"robots must be a string or None, got {type(self.robots).__name__}")
        for host, fault in self.robots_faults:
            if fault not in ROBOTS_FAULTS or not 0 <= host < self.hosts:
                raise ConfigError(f"robots fault must be (host, one of {ROBOTS_FAULTS})")
        last = self.first_address + self.hosts - 1
        if last > _MAX_LAST_OCTET:
            raise ConfigError(
                f"hosts={self.hosts} from first_address={self.first_address} would need "
                f"127.0.0.{last}; the last usable address is 127.0.0.{_MAX_LAST_OCTET}"
            )

    @property
    def addresses(self) -> list[str]:
        """The loopback addresses the hosts bind by default, host 0 first."""
        return [f"127.0.0.{self.first_address + h}" for h in range(self.hosts)]


def _check_int(name: str, value: object, *, minimum: int | None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be ≥ {minimum}, got {value!r}")


def _check_fraction(name: str, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ConfigError(f"{name} must be a fraction in [0, 1], got {value!r}")


class PageRef(NamedTuple):
    """One page of the site: a host index and a page number (None: the index ``/``)."""

    host: int
    page: int | None

    @property
    def path(self) -> str:
        return "/" if self.page is None else f"/page/{self.page}"


def _hash(spec: SiteSpec, *parts: object) -> int:
    """A 64-bit value that depends only on the seed and ``parts``."""
    key = ":".join(map(str, (spec.seed, *parts))).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def _unit(spec: SiteSpec, *parts: object) -> float:
    """A number in [0, 1) that depends only on the seed and ``parts``."""
    return _hash(spec, *parts) / 2**64


def _check_host(spec: SiteSpec, host: int) -> None:
    if not 0 <= host < spec.hosts:
        raise ValueError(f"host index {host} out of range for a site of {spec.hosts} host(s)")


def _random_target(spec: SiteSpec, host: int, *parts: object) -> PageRef:
    if spec.hosts > 1 and _unit(spec, "cross", host, *parts) < spec.cross_host_links:
        other = 1 + _hash(spec, "other", host, *parts) % (spec.hosts - 1)
        host = (host + other) % spec.hosts
    return PageRef(host, _hash(spec, "target", host, *parts) % spec.pages)


def page_links(spec: SiteSpec, host: int, page: int) -> list[PageRef]:
    """The ``links_per_page`` link targets of ``/page/{page}`` on ``host``, in page order.

    The first link of page *n* is page *n + 1* (same host) while there is one,
    so a crawl from ``/`` can reach every page; the others are pseudo-random,
    possibly repeated, possibly the page itself, on another host with
    probability ``cross_host_links``.
    """
    _check_host(spec, host)
    if not 0 <= page < spec.pages:
        raise ValueError(f"page {page} out of range for a site of {spec.pages} page(s)")
    links: list[PageRef] = []
    if page + 1 < spec.pages:
        links.append(PageRef(host, page + 1))
    while len(links) < spec.links_per_page:
        links.append(_random_target(spec, host, page, len(links)))
    return links


def index_links(spec: SiteSpec, host: int) -> list[PageRef]:
    """The link targets of ``/`` on ``host``: page 0, then a few same-host pages."""
    _check_host(spec, host)
    links = [PageRef(host, 0)]
    for i in range(1, min(INDEX_LINKS, spec.pages)):
        links.append(PageRef(host, _hash(spec, "index", host, i) % spec.pages))
    return links


def links_from(spec: SiteSpec, ref: PageRef) -> list[PageRef]:
    """The links a crawler finds on ``ref``: none when the page answers 500."""
    if ref.page is None:
        return index_links(spec, ref.host)
    if is_error_page(spec, ref.host, ref.page):
        return []
    return page_links(spec, ref.host, ref.page)


def is_error_page(spec: SiteSpec, host: int, page: int) -> bool:
    """Whether ``/page/{page}`` on ``host`` always answers 500 (``error_rate``)."""
    return spec.error_rate > 0 and _unit(spec, "error", host, page) < spec.error_rate


def href_for(
    spec: SiteSpec, base_urls: Sequence[str], source: PageRef, slot: int, target: PageRef
) -> str:
    """How link number ``slot`` of ``source`` spells ``target``.

    Links to other hosts are absolute; same-host links are, deterministically,
    absolute, root-relative (``/page/7``) or relative (``7`` from a page,
    ``page/7`` from the index) so crawlers must resolve all three.
    """
    if target.host != source.host:
        return base_urls[target.host] + target.path
    form = _hash(spec, "href", source.host, source.page, slot) % 3
    if form == 0:
        return base_urls[target.host] + target.path
    if form == 1 or target.page is None:
        return target.path
    return f"{target.page}" if source.page is not None else f"page/{target.page}"


def reachable(
    spec: SiteSpec,
    *,
    host: int | Iterable[int] = 0,
    depth: int | None = None,
    cross_host: bool = True,
) -> set[PageRef]:
    """Every page a breadth-first crawl from the index of ``host`` fetches.

    ``depth`` counts link hops from ``/`` (0: ``/`` alone; None: no limit).
    Pages that answer 500 are fetched but yield no links. With ``cross_host``
    False, links to other hosts are neither fetched nor followed.
    """
    roots = [host] if isinstance(host, int) else list(host)
    for root in roots:
        _check_host(spec, root)
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be ≥ 0 or None, got {depth}")
    seen = {PageRef(root, None) for root in roots}
    queue = deque((ref, 0) for ref in seen)
    while queue:
        ref, level = queue.popleft()
        if depth is not None and level >= depth:
            continue
        for target in links_from(spec, ref):
            if target in seen or (not cross_host and target.host not in roots):
                continue
            seen.add(target)
            queue.append((target, level + 1))
    return seen


def expected_pages(
    spec: SiteSpec,
    base_urls: Sequence[str],
    *,
    host: int | Iterable[int] = 0,
    depth: int | None = None,
    cross_host: bool = True,
) -> set[str]:
    """The absolute URLs of :func:`reachable` pages, spelled as the server spells them.

    ``base_urls`` are the running server's (``TestWeb.base_urls``), host 0 first.
    The index is ``{base}/``.
    """
    if len(base_urls) != spec.hosts:
        raise ValueError(f"expected {spec.hosts} base URL(s), got {len(base_urls)}")
    refs = reachable(spec, host=host, depth=depth, cross_host=cross_host)
    return {base_urls[ref.host] + ref.path for ref in refs}
