"""Which results a reader wants: by HTTP status, by error kind, or every failure.

A ``ResultFilter`` is a value the stores turn into their SQL (so a filtered export
reads only the rows it writes) and ``matches`` states in Python what that SQL means.
Within one criterion the choices are alternatives; criteria given together must all
hold. ``failed`` selects what went wrong: an error kind, or an HTTP status ≥ 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shoal.core.errors import ConfigError
from shoal.core.kinds import ErrorKind
from shoal.core.model import FetchResult

__all__ = ["FAILED_STATUS", "ResultFilter", "parse_statuses"]

FAILED_STATUS = 400
_CLASS = re.compile(r"([1-5])xx")
_CODE = re.compile(r"[1-5][0-9][0-9]")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultFilter:
    """``status_classes`` are hundreds (2 for 2xx); ``statuses`` exact codes."""

    status_classes: tuple[int, ...] = ()
    statuses: tuple[int, ...] = ()
    error_kinds: tuple[str, ...] = ()
    failed: bool = False

    def __post_init__(self) -> None:
        for cls in self.status_classes:
            if not 1 <= cls <= 5:
                raise ConfigError(f"status class must be 1xx to 5xx, got {cls}xx")
        for code in self.statuses:
            if not 100 <= code <= 599:
                raise ConfigError(f"HTTP status must be 100 to 599, got {code}")
        known = {kind.value for kind in ErrorKind}
        for kind in self.error_kinds:
            if kind not in known:
                raise ConfigError(
                    f"unknown error kind {kind!r}; choose one of {', '.join(sorted(known))}"
                )

    @property
    def empty(self) -> bool:
        """True when the filter lets every result through."""
        return not (self.status_classes or self.statuses or self.error_kinds or self.failed)

    def matches(self, result: FetchResult) -> bool:
        status = result.status
        if self.status_classes or self.statuses:
            by_class = status is not None and status // 100 in self.status_classes
            if not (by_class or status in self.statuses):
                return False
        if self.error_kinds and result.error_kind not in self.error_kinds:
            return False
        if self.failed:
            return result.error_kind is not None or (status is not None and status >= FAILED_STATUS)
        return True


def parse_statuses(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``"2xx,404"`` → ((2,), (404,)): status classes and exact codes, in order given."""
    classes: list[int] = []
    codes: list[int] = []
    for part in text.split(","):
        item = part.strip().lower()
        if (match := _CLASS.fullmatch(item)) is not None:
            classes.append(int(match.group(1)))
        elif _CODE.fullmatch(item):
            codes.append(int(item))
        else:
            raise ConfigError(
                f"status {part.strip()!r} is not a class like 2xx or 4xx nor a code like 404"
            )
    return tuple(dict.fromkeys(classes)), tuple(dict.fromkeys(codes))
