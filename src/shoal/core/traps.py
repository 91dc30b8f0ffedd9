"""Crawler-trap defences: URLs no real site needs, and pages per host.

A crawler trap is a site (often by accident) generating endless distinct URLs:
calendars with a "next month" link forever, relative links that nest a path
into itself (``/a/b/a/b/a/b/...``), session ids and filters piling up in the
query. ``check_url`` rejects a canonical URL that shows such a shape; the
limits are generous for real sites. ``HostBudget`` caps the pages admitted
per host, which bounds whatever trap the URL checks miss.

Reasons are stable strings (``TrapReason``), recorded as rejection counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from shoal.core.errors import ConfigError

__all__ = ["HostBudget", "TrapLimits", "TrapReason", "check_url"]


class TrapReason(StrEnum):
    """Why a URL looks like a trap; the values are stable, recorded strings."""

    URL_TOO_LONG = "url_too_long"
    PATH_TOO_DEEP = "path_too_deep"
    REPEATED_SEGMENTS = "repeated_segments"
    TOO_MANY_QUERY_PARAMS = "too_many_query_params"
    HOST_PAGE_LIMIT = "host_page_limit"


@dataclass(frozen=True, kw_only=True, slots=True)
class TrapLimits:
    """Shapes of URL that real sites do not need.

    ``max_url_length`` — characters in the canonical URL (ASCII, so bytes);
    2048 is what old browsers and many servers accept.
    ``max_path_depth`` — path segments: ``/a/b/`` has 2, ``/a//b`` has 3
    (empty segments count; a trailing slash does not add one).
    ``max_repeated_segment`` — how often one (non-empty) segment may appear in
    one path: ``/a/b/a/b/a/b/a/`` has ``a`` 4 times, a trap at the default 3.
    ``max_query_params`` — ``&``-separated parameters in the query.
    ``max_pages_per_host`` — pages admitted per host (``HostBudget``); ``None``
    is no limit.
    """

    max_url_length: int = 2048
    max_path_depth: int = 16
    max_repeated_segment: int = 3
    max_query_params: int = 16
    max_pages_per_host: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_url_length", "max_path_depth", "max_repeated_segment"):
            _check_limit(name, getattr(self, name), minimum=1)
        _check_limit("max_query_params", self.max_query_params, minimum=0)
        if self.max_pages_per_host is not None:
            _check_limit("max_pages_per_host", self.max_pages_per_host, minimum=1)


def _check_limit(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer ≥ {minimum}, got {value!r}")


def check_url(url: str, limits: TrapLimits) -> TrapReason | None:
    """``None`` when the canonical ``url`` is within ``limits``, else why not.

    Never raises, whatever the string (a non-URL has no path to check).
    """
    if len(url) > limits.max_url_length:
        return TrapReason.URL_TOO_LONG
    authority_at = url.find("://")
    path_at = url.find("/", authority_at + 3) if authority_at >= 0 else -1
    query_at = url.find("?", max(path_at, 0))
    if path_at >= 0:
        path = url[path_at : query_at if query_at >= 0 else len(url)]
        slashes = path.count("/")
        depth = slashes - 1 if path.endswith("/") else slashes
        if depth > limits.max_path_depth:
            return TrapReason.PATH_TOO_DEEP
        # A segment can only repeat more than N times in a path of more than N.
        if depth > limits.max_repeated_segment and _repeats(path, limits.max_repeated_segment):
            return TrapReason.REPEATED_SEGMENTS
    if query_at >= 0:
        query = url[query_at + 1 :]
        # Cheap bound first: parameters ≤ "&" + 1.
        if query.count("&") >= limits.max_query_params:
            params = sum(1 for pair in query.split("&") if pair)
            if params > limits.max_query_params:
                return TrapReason.TOO_MANY_QUERY_PARAMS
    return None


def _repeats(path: str, most: int) -> bool:
    """Whether a non-empty segment of ``path`` appears more than ``most`` times."""
    counts: dict[str, int] = {}
    for segment in path.split("/"):
        if segment:
            count = counts.get(segment, 0) + 1
            if count > most:
                return True
            counts[segment] = count
    return False


class HostBudget:
    """Pages admitted per host, up to ``max_pages_per_host`` (``None``: no limit).

    Call ``admit`` once per URL new to the frontier (after deduplication), so
    that duplicates do not spend the budget. ``counts`` restores the counts of
    an earlier run, e.g. from the store. Memory is one dict entry per host.
    """

    __slots__ = ("_counts", "_limit")

    reason = TrapReason.HOST_PAGE_LIMIT

    def __init__(
        self, max_pages_per_host: int | None, *, counts: Mapping[str, int] | None = None
    ) -> None:
        if max_pages_per_host is not None:
            _check_limit("max_pages_per_host", max_pages_per_host, minimum=1)
        self._limit = max_pages_per_host
        self._counts: dict[str, int] = dict(counts or {})

    @classmethod
    def from_limits(cls, limits: TrapLimits) -> HostBudget:
        return cls(limits.max_pages_per_host)

    @property
    def limit(self) -> int | None:
        return self._limit

    def admit(self, host: str) -> bool:
        """Count one page for ``host``; False (and not counted) once it is at its budget."""
        count = self._counts.get(host, 0)
        if self._limit is not None and count >= self._limit:
            return False
        self._counts[host] = count + 1
        return True

    def count(self, host: str) -> int:
        """Pages admitted for ``host`` so far."""
        return self._counts.get(host, 0)

    def __repr__(self) -> str:
        return f"HostBudget(max_pages_per_host={self._limit!r}, hosts={len(self._counts)})"
