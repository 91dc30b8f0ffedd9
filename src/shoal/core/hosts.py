"""Per-host adaptation: autothrottle delays, and giving up on hosts that never answer.

Pure decisions over values passed in; the engine applies them to its scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from shoal.core.errors import ConfigError
from shoal.core.kinds import ErrorKind

__all__ = ["DEAD_KINDS", "UNREACHABLE_KINDS", "AutoThrottle", "HostHealth", "HostVerdict"]

# Failures that say "this host cannot be reached", as opposed to a bad page.
UNREACHABLE_KINDS: frozenset[str] = frozenset(
    {
        ErrorKind.DNS_ERROR,
        ErrorKind.CONNECT_ERROR,
        ErrorKind.CONNECT_TIMEOUT,
        ErrorKind.TLS_ERROR,
        ErrorKind.CERTIFICATE_ERROR,
    }
)


@dataclass(frozen=True, kw_only=True, slots=True)
class AutoThrottle:
    """Scrapy-style adaptive delay: aim for ``target_concurrency`` requests in flight per host.

    After each response the delay moves halfway towards ``latency /
    target_concurrency``; it never drops below ``min_delay`` (the configured
    ``--delay`` or robots ``Crawl-delay``) and never rises above ``max_delay``.
    A 429 or 503 doubles it (at least one second). An error response never
    makes it smaller: a server that answers errors fast is not a fast server.
    """

    target_concurrency: float = 2.0
    max_delay: float = 60.0

    def __post_init__(self) -> None:
        if self.target_concurrency <= 0:
            raise ConfigError("autothrottle target concurrency must be > 0")
        if self.max_delay <= 0:
            raise ConfigError("autothrottle max delay must be > 0")

    def next_delay(
        self, current: float, *, latency: float | None, status: int | None, min_delay: float
    ) -> float:
        if status in (429, 503):
            proposed = max(2 * current, 1.0)
        elif latency is None:
            proposed = current
        else:
            proposed = (current + latency / self.target_concurrency) / 2
            if status is None or status >= 400:
                proposed = max(proposed, current)
        return min(self.max_delay, max(min_delay, proposed))


class HostVerdict(Enum):
    OK = "ok"
    PAUSE = "pause"
    ABANDON = "abandon"


# Failures that say "nobody is there": a host that has only ever answered with these is
# dead, not struggling (connection refused, a name that does not resolve).
DEAD_KINDS: frozenset[str] = frozenset({ErrorKind.DNS_ERROR, ErrorKind.CONNECT_ERROR})


class HostHealth:
    """Counts consecutive 'unreachable' failures per host.

    A host that has never answered (no response, no robots.txt) and fails with
    ``DEAD_KINDS`` ``dead_after`` times in a row is dead: it is abandoned at once, and
    its remaining URLs are recorded with that failure's kind (``abandoned_kind``).
    A host that answered before is patient: after ``pause_after`` failures in a row
    it is paused for ``pause_seconds``; after ``abandon_after`` in a row it is
    abandoned, its remaining URLs recorded as ``host_abandoned`` without another try.
    Any response resets the count. Memory holds the hosts that answered (one set
    entry each) and those currently failing.
    """

    def __init__(
        self, *, pause_after: int = 5, abandon_after: int = 15, dead_after: int = 3
    ) -> None:
        if not 0 < pause_after <= abandon_after:
            raise ConfigError("need 0 < pause_after ≤ abandon_after")
        if dead_after < 1:
            raise ConfigError("need dead_after ≥ 1")
        self.pause_after = pause_after
        self.abandon_after = abandon_after
        self.dead_after = dead_after
        self._failures: dict[str, int] = {}
        self._abandoned: dict[str, tuple[str, str]] = {}  # host → (error kind, message)
        self._reached: set[str] = set()

    def abandoned(self, host: str) -> bool:
        return host in self._abandoned

    def abandoned_kind(self, host: str) -> tuple[str, str]:
        """The error kind and message the abandoned ``host``'s remaining URLs get."""
        return self._abandoned[host]

    def failing(self, host: str) -> bool:
        """Whether ``host``'s last outcome was an 'unreachable' failure."""
        return host in self._failures

    def reached(self, host: str) -> None:
        """``host`` answered (a response, or its robots.txt did)."""
        self._reached.add(host)
        self._failures.pop(host, None)

    def record(self, host: str, error_kind: str | None, error: str | None = None) -> HostVerdict:
        if error_kind not in UNREACHABLE_KINDS:
            self._failures.pop(host, None)
            if error_kind is None:
                self._reached.add(host)
            return HostVerdict.OK
        failures = self._failures.get(host, 0) + 1
        self._failures[host] = failures
        if failures >= self.dead_after and error_kind in DEAD_KINDS and host not in self._reached:
            self._abandoned[host] = (
                error_kind,
                f"{error or error_kind}; the host never answered: gave up on it",
            )
            self._failures.pop(host, None)
            return HostVerdict.ABANDON
        if failures >= self.abandon_after:
            self._abandoned[host] = (
                ErrorKind.HOST_ABANDONED,
                "host unreachable: gave up on it",
            )
            self._failures.pop(host, None)
            return HostVerdict.ABANDON
        if failures % self.pause_after == 0:
            return HostVerdict.PAUSE
        return HostVerdict.OK
