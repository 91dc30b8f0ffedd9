"""Which discovered URLs a crawl follows.

A ``Scope`` is decided once per discovered link, so everything that can be is
computed when it is made: the seeds' hosts, sites and prefixes, the compiled
patterns. ``decide`` takes a canonical URL (as ``links.extract_links`` and
``urls.canonicalize`` produce) and the depth the URL would be fetched at (the
seeds are depth 0, their links depth 1...), and returns ``None`` when the URL
is in scope, else the reason it is not.

Modes, each relative to the seeds:

``host``
    The URL's host is one of the seeds' hosts, exactly: ``www.example.org``
    and ``example.org`` are different hosts. Scheme and port do not matter
    (``http://h:8080/`` and ``https://h/`` are the same host), as for
    politeness.
``domain``
    The URL's host is a seed's *site* or a subdomain of it. Without a
    public-suffix list offline, a seed's site is its host without a leading
    ``www.`` (when something with a dot remains): seed ``www.example.org``
    admits ``example.org``, ``www.example.org`` and ``a.b.example.org``, but
    not ``otherexample.org``; seed ``shop.example.org`` admits
    ``shop.example.org`` and its subdomains only. IP address hosts admit
    themselves only.
``prefix``
    The URL starts with a seed's directory: the seed up to and including the
    last ``/`` of its path (``https://h/docs/intro.html`` → ``https://h/docs/``;
    ``https://h/docs`` → ``https://h/``). Scheme, host and port must match.
``any``
    Every URL.

Then the patterns (regular expressions, ``re.search`` on the canonical URL):
with ``include`` patterns, a URL must match one of them; it must match none of
the ``exclude`` patterns, which win. Failing either is ``excluded``. Last,
``max_depth`` bounds the depth (``too_deep``). The seeds themselves are in
scope at depth 0 whatever the patterns say.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, TypeAlias, get_args

from shoal.core.errors import ConfigError, InputError
from shoal.core.urls import canonical_host, canonicalize

__all__ = ["Scope", "ScopeDecision", "ScopeMode"]

ScopeMode: TypeAlias = Literal["host", "domain", "prefix", "any"]
_MODES: tuple[str, ...] = get_args(ScopeMode)


class ScopeDecision(StrEnum):
    """Why a URL is not followed; the values are stable, recorded strings."""

    OUT_OF_SCOPE = "out_of_scope"
    EXCLUDED = "excluded"
    TOO_DEEP = "too_deep"


@dataclass(frozen=True, kw_only=True, slots=True)
class Scope:
    """The crawl's boundary: mode, seeds, include/exclude patterns and depth.

    ``seeds`` are canonicalized when the scope is made (``ConfigError`` if one
    is not an http(s) URL). ``include`` and ``exclude`` are regular
    expression sources, compiled once (``ConfigError`` names a bad one).
    ``max_depth`` ``None`` means no limit.
    """

    mode: ScopeMode
    seeds: tuple[str, ...]
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_depth: int | None = None

    _seed_set: set[str] = field(init=False, repr=False, compare=False)
    _members: _Members = field(init=False, repr=False, compare=False)
    _adopted: list[tuple[str, str]] = field(init=False, repr=False, compare=False)
    _includes: tuple[Callable[[str], object], ...] = field(init=False, repr=False, compare=False)
    _excludes: tuple[Callable[[str], object], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ConfigError(f"scope mode must be one of {', '.join(_MODES)}; got {self.mode!r}")
        if isinstance(self.seeds, str):
            raise ConfigError("scope seeds must be a sequence of URLs, not one string")
        seeds = tuple(_canonical_seed(seed) for seed in self.seeds)
        if not seeds and self.mode != "any":
            raise ConfigError(f"scope mode {self.mode!r} needs at least one seed")
        if self.max_depth is not None and (
            not isinstance(self.max_depth, int) or self.max_depth < 0
        ):
            raise ConfigError(f"max_depth must be an integer ≥ 0 or None, got {self.max_depth!r}")
        set_field = object.__setattr__
        set_field(self, "seeds", seeds)
        set_field(self, "include", tuple(self.include))
        set_field(self, "exclude", tuple(self.exclude))
        set_field(self, "_seed_set", set(seeds))
        set_field(self, "_members", _Members(self.mode, seeds))
        set_field(self, "_adopted", [])
        set_field(self, "_includes", _compile("include", self.include))
        set_field(self, "_excludes", _compile("exclude", self.exclude))

    def __reduce__(self) -> tuple[Callable[..., Scope], tuple[object, ...]]:
        # The compiled patterns do not pickle: rebuild them (and replay the adoptions).
        return _restore, (
            self.mode,
            self.seeds,
            self.include,
            self.exclude,
            self.max_depth,
            tuple(self._adopted),
        )

    @property
    def adopted(self) -> tuple[tuple[str, str], ...]:
        """The redirect targets taken into the scope so far, as (seed, target) pairs."""
        return tuple(self._adopted)

    def adopt(self, seed: str, target: str) -> bool:
        """A seed (or a redirect target adopted earlier) redirects to the canonical
        ``target``: take the target in as a seed, at a constant cost. Return whether the
        scope changed; a ``seed`` that is not one changes nothing.

        In ``host`` and ``domain`` mode the target's host joins the seeds' hosts (http →
        https and example.com → www.example.com keep a crawl going). In ``prefix`` mode
        the target's directory *replaces* the seed's: ``/library`` redirecting to
        ``/library/`` scopes the crawl to ``/library/``, not to the whole host.
        The one mutation a scope knows; everything else about it is fixed.
        """
        if self.mode == "any" or seed not in self._seed_set or target in self._seed_set:
            return False
        if self.mode == "prefix":
            if _directory(seed) == _directory(target):
                self._seed_set.add(target)
                return False
            self._members.drop_prefix(seed)
            self._members.add(target)
        else:
            if target in self._members:
                self._seed_set.add(target)
                return False
            self._members.add(target)
        self._seed_set.add(target)
        self._adopted.append((seed, target))
        return True

    def prefix_of(self, url: str) -> str:
        """The directory ``url`` gives a prefix scope (up to the last ``/`` of its path)."""
        return _directory(url)

    def decide(self, url: str, depth: int) -> ScopeDecision | None:
        """``None`` when the canonical ``url`` at ``depth`` is to be followed, else why not."""
        if depth == 0 and url in self._seed_set:
            return None
        if url not in self._members:
            return ScopeDecision.OUT_OF_SCOPE
        if self._excludes and any(search(url) for search in self._excludes):
            return ScopeDecision.EXCLUDED
        if self._includes and not any(search(url) for search in self._includes):
            return ScopeDecision.EXCLUDED
        if self.max_depth is not None and depth > self.max_depth:
            return ScopeDecision.TOO_DEEP
        return None


def _restore(
    mode: ScopeMode,
    seeds: tuple[str, ...],
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    max_depth: int | None,
    adopted: tuple[tuple[str, str], ...] = (),
) -> Scope:
    scope = Scope(mode=mode, seeds=seeds, include=include, exclude=exclude, max_depth=max_depth)
    for seed, target in adopted:
        scope.adopt(seed, target)
    return scope


def _canonical_seed(seed: object) -> str:
    if not isinstance(seed, str):
        raise ConfigError(f"scope seed must be a URL string, got {seed!r}")
    try:
        return canonicalize(seed)
    except InputError as error:
        raise ConfigError(f"invalid scope seed {seed!r}: {error}") from None


def _compile(kind: str, patterns: tuple[str, ...]) -> tuple[Callable[[str], object], ...]:
    searches = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ConfigError(f"{kind} pattern must be a string, got {pattern!r}")
        try:
            searches.append(re.compile(pattern).search)
        except re.error as error:
            raise ConfigError(f"invalid {kind} pattern {pattern!r}: {error}") from None
    return tuple(searches)


def _host(url: str) -> str | None:
    """The host of a canonical URL, or None when ``url`` is not one."""
    try:
        return canonical_host(url)
    except ValueError:
        return None


def _site(host: str) -> str:
    """A seed host's site for the ``domain`` mode: without a leading ``www.``."""
    if host.startswith("www.") and "." in host[4:]:
        return host[4:]
    return host


def _directory(seed: str) -> str:
    """A canonical seed URL up to and including the last ``/`` of its path."""
    without_query = seed.partition("?")[0]
    return without_query[: without_query.rindex("/") + 1]


class _Members:
    """The seeds' part that a mode tests a URL against (hosts, sites or directories).

    A seed's redirect can extend it (``Scope.adopt``) at the cost of one set or dict
    update, whatever the number of seeds.
    """

    __slots__ = ("_dotted", "_hosts", "_mode", "_prefixes", "_sites", "_starts")

    def __init__(self, mode: str, seeds: tuple[str, ...]) -> None:
        self._mode = mode
        self._hosts: set[str] = set()
        self._sites: set[str] = set()
        self._dotted: tuple[str, ...] = ()
        self._prefixes: dict[str, int] = {}  # directory → how many seeds have it
        self._starts: tuple[str, ...] = ()
        for seed in seeds:
            self.add(seed)

    def add(self, seed: str) -> None:
        mode = self._mode
        if mode == "any":
            return
        if mode == "prefix":
            directory = _directory(seed)
            self._prefixes[directory] = self._prefixes.get(directory, 0) + 1
            self._starts = tuple(sorted(self._prefixes))
            return
        host = canonical_host(seed)
        self._hosts.add(host)
        site = _site(host)
        if site not in self._sites:
            self._sites.add(site)
            # An IP address has no subdomains (a canonical host ending in a number is
            # an IPv4 address).
            if not (site.startswith("[") or site[-1].isdigit()):
                self._dotted = (*self._dotted, "." + site)

    def drop_prefix(self, seed: str) -> None:
        """The seed's directory stops counting for it (prefix mode)."""
        directory = _directory(seed)
        left = self._prefixes.get(directory, 0) - 1
        if left > 0:
            self._prefixes[directory] = left
        else:
            self._prefixes.pop(directory, None)
        self._starts = tuple(sorted(self._prefixes))

    def __contains__(self, url: str) -> bool:
        mode = self._mode
        if mode == "any":
            return True
        if mode == "prefix":
            return url.startswith(self._starts)
        host = _host(url)
        if host is None:
            return False
        if mode == "host":
            return host in self._hosts
        return host in self._sites or host.endswith(self._dotted)
