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

    _seed_set: frozenset[str] = field(init=False, repr=False, compare=False)
    _in_mode: Callable[[str], bool] = field(init=False, repr=False, compare=False)
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
        set_field(self, "_seed_set", frozenset(seeds))
        set_field(self, "_in_mode", _mode_test(self.mode, seeds))
        set_field(self, "_includes", _compile("include", self.include))
        set_field(self, "_excludes", _compile("exclude", self.exclude))

    def __reduce__(self) -> tuple[Callable[..., Scope], tuple[object, ...]]:
        # The compiled tests are closures, which do not pickle: rebuild them.
        return _restore, (self.mode, self.seeds, self.include, self.exclude, self.max_depth)

    def decide(self, url: str, depth: int) -> ScopeDecision | None:
        """``None`` when the canonical ``url`` at ``depth`` is to be followed, else why not."""
        if depth == 0 and url in self._seed_set:
            return None
        if not self._in_mode(url):
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
) -> Scope:
    return Scope(mode=mode, seeds=seeds, include=include, exclude=exclude, max_depth=max_depth)


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


def _mode_test(mode: str, seeds: tuple[str, ...]) -> Callable[[str], bool]:
    """The membership test of ``mode``, with the seeds' parts computed once."""
    if mode == "any":
        return lambda url: True
    if mode == "prefix":
        prefixes = tuple(sorted({_directory(seed) for seed in seeds}))
        return lambda url: url.startswith(prefixes)
    hosts = frozenset(canonical_host(seed) for seed in seeds)
    if mode == "host":
        return lambda url: _host(url) in hosts
    sites = frozenset(_site(host) for host in hosts)
    # An IP address has no subdomains (a canonical host ending in a number is
    # an IPv4 address).
    dotted = tuple("." + site for site in sites if not (site.startswith("[") or site[-1].isdigit()))

    def in_domain(url: str) -> bool:
        host = _host(url)
        return host is not None and (host in sites or host.endswith(dotted))

    return in_domain
