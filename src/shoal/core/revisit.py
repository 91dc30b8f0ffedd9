"""Recrawling a finished job: what is asked again, and what each answer means.

A recrawl sends a job's finished URLs back to be fetched again, each with what
its result remembers of the page (``Revisit``): its validators, sent as
``If-None-Match`` and ``If-Modified-Since``, and its status and body hash.
Each answer is then one ``Change``:

``unchanged``
    304 Not Modified, the same body as before, or the same failure again: the
    result is kept as it was (body and fields included).
``changed``
    anything else: the new result replaces the old, which goes to the job's
    history (the last ``keep_history`` per URL).
``gone``
    a page that was fine (2xx) now fails: 4xx (404, 410...), 5xx, or no
    response at all. Replaced and kept in history like a change.

URLs the recrawl finds that the job never had are fetched as in any crawl
(``new`` in a run's summary).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, TypeAlias

from shoal.core.errors import ConfigError

__all__ = [
    "DEFAULT_KEEP_HISTORY",
    "MAX_KEEP_HISTORY",
    "Change",
    "Recrawl",
    "Revisit",
    "change_of",
    "parse_duration",
]

Change: TypeAlias = Literal["unchanged", "changed", "gone"]

DEFAULT_KEEP_HISTORY = 3
"""Earlier results kept per URL when none is asked."""
MAX_KEEP_HISTORY = 1000

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds from ``"90"``, ``"90s"``, ``"30m"``, ``"12h"``, ``"1d"`` or ``"2w"``."""
    match = _DURATION.fullmatch(str(text))
    value = float(match.group(1)) * _UNITS[match.group(2).lower() or "s"] if match else math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(
            f"a duration is a number with s, m, h, d or w (such as 30m, 12h, 1d, 2w), got {text!r}"
        )
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Recrawl:
    """A run that fetches a finished job's URLs again, conditionally (see the module
    docstring). ``older_than``: only results fetched (or confirmed unchanged) at least
    that many seconds ago; None: all of them."""

    older_than: float | None = None

    def __post_init__(self) -> None:
        older = self.older_than
        if older is not None and (
            isinstance(older, bool)
            or not isinstance(older, int | float)
            or not math.isfinite(older)
            or older <= 0
        ):
            raise ConfigError(f"older_than must be seconds > 0, got {older!r}")

    def fetched_before(self, now: float) -> float | None:
        """The time a result must be older than to be fetched again (None: any)."""
        return None if self.older_than is None else now - self.older_than


@dataclass(frozen=True, slots=True)
class Revisit:
    """What a URL's current result remembers, for fetching it again."""

    etag: str | None
    last_modified: str | None
    status: int | None
    body_hash: str | None
    error_kind: str | None = None

    def headers(self) -> tuple[tuple[str, str], ...]:
        """The conditional request headers these validators make (none: a plain GET)."""
        conditional: tuple[tuple[str, str], ...] = ()
        if self.etag:
            conditional += (("If-None-Match", self.etag),)
        if self.last_modified:
            conditional += (("If-Modified-Since", self.last_modified),)
        return conditional

    @property
    def was_ok(self) -> bool:
        return self.error_kind is None and self.status is not None and 200 <= self.status <= 299


def change_of(
    revisit: Revisit, *, status: int | None, error_kind: str | None, body_hash: str | None
) -> Change:
    """What the new answer (``status``; ``error_kind`` when there is none, or a policy
    outcome) means for the URL's result."""
    if status == 304:
        return "unchanged"
    ok = status is not None and 200 <= status <= 299 and error_kind is None
    if ok:
        if revisit.was_ok and body_hash is not None and body_hash == revisit.body_hash:
            return "unchanged"
        return "changed"
    if revisit.was_ok:
        return "gone"
    same = status == revisit.status and error_kind == revisit.error_kind
    return "unchanged" if same else "changed"
