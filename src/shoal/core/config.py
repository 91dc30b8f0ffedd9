"""Configuration as frozen, keyword-only value objects, validated on creation.

The CLI, the service and the Python API all build these same objects; only
the edges read flags, environment variables and TOML.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

from shoal.core.errors import ConfigError
from shoal.core.extract import ExtractRules

__all__ = [
    "DEFAULT_USER_AGENT",
    "CrawlConfig",
    "Limits",
    "Politeness",
    "RetryPolicy",
    "Timeouts",
]

DEFAULT_USER_AGENT = "shoal/0.1 (+https://github.com/shoal-crawler/shoal)"
MiB = 1024 * 1024


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if not math.isfinite(value):  # NaN passes every comparison; infinity is no limit
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be {bound}, got {value!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class Limits:
    """How much work at once, and how much of each response.

    ``processes``: child processes doing the HTTP (see ``engine.fetchpool``); ``None``
    lets the run decide (one per core beyond the first, once the job is big enough).
    """

    concurrency: int = 256
    max_bytes: int = 10 * MiB
    max_redirects: int = 10
    processes: int | None = None

    def __post_init__(self) -> None:
        _positive("concurrency", self.concurrency)
        if self.processes is not None:
            _positive("processes", self.processes, allow_zero=True)
        _positive("max_bytes", self.max_bytes)
        _positive("max_redirects", self.max_redirects, allow_zero=True)


@dataclass(frozen=True, kw_only=True, slots=True)
class Timeouts:
    """Deadlines in seconds: ``total`` bounds one attempt from start to last byte."""

    total: float = 60.0
    connect: float = 10.0
    read: float = 30.0

    def __post_init__(self) -> None:
        _positive("total timeout", self.total)
        _positive("connect timeout", self.connect)
        _positive("read timeout", self.read)


@dataclass(frozen=True, kw_only=True, slots=True)
class Politeness:
    """Per-host limits: requests in flight, and seconds between request starts."""

    per_host: int = 8
    delay: float = 0.0
    max_crawl_delay: float = 30.0

    def __post_init__(self) -> None:
        _positive("per_host", self.per_host)
        _positive("delay", self.delay, allow_zero=True)
        _positive("max_crawl_delay", self.max_crawl_delay, allow_zero=True)


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Which failures are tried again, and how long to wait before each retry.

    Waits grow exponentially with full jitter: attempt *n* waits a uniform
    random time in ``[0, min(backoff_cap, backoff_base * 2**n))``. A server's
    ``Retry-After`` replaces the jittered wait, capped at ``retry_after_cap``.
    """

    retries: int = 3
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_after_cap: float = 120.0
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})

    def __post_init__(self) -> None:
        _positive("retries", self.retries, allow_zero=True)
        _positive("backoff_base", self.backoff_base, allow_zero=True)
        _positive("backoff_cap", self.backoff_cap, allow_zero=True)
        _positive("retry_after_cap", self.retry_after_cap, allow_zero=True)
        for status in self.retry_statuses:
            if not 100 <= status <= 599:
                raise ConfigError(f"retry status must be an HTTP status, got {status!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class CrawlConfig:
    """Everything one job run needs to know; ``follow_links`` makes it a crawl.

    ``extract``: rules whose values are recorded per page as ``FetchResult.fields``.
    """

    limits: Limits = field(default_factory=Limits)
    timeouts: Timeouts = field(default_factory=Timeouts)
    politeness: Politeness = field(default_factory=Politeness)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    user_agent: str = DEFAULT_USER_AGENT
    save_bodies: bool = False
    follow_links: bool = False
    verify_tls: bool = True
    extract: ExtractRules | None = None

    def __post_init__(self) -> None:
        if not self.user_agent.strip() or any(c in self.user_agent for c in "\r\n"):
            raise ConfigError("user agent must be a non-empty single line")
        if self.extract is not None and not isinstance(self.extract, ExtractRules):
            raise ConfigError(f"extract must be ExtractRules, got {type(self.extract).__name__}")

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> CrawlConfig:
        """The config ``as_record`` wrote (what a job records), for a worker joining the job.
        Keys this version does not know are ignored; missing ones take their defaults."""

        def part(kind: Any, key: str) -> Any:
            given = record.get(key)
            names = {setting.name for setting in fields(kind)}
            values = {k: v for k, v in (given or {}).items() if k in names}
            if "retry_statuses" in values:
                values["retry_statuses"] = frozenset(values["retry_statuses"])
            return kind(**values)

        rules = record.get("extract")
        return cls(
            limits=part(Limits, "limits"),
            timeouts=part(Timeouts, "timeouts"),
            politeness=part(Politeness, "politeness"),
            retry=part(RetryPolicy, "retry"),
            user_agent=str(record.get("user_agent") or DEFAULT_USER_AGENT),
            save_bodies=bool(record.get("save_bodies", False)),
            follow_links=bool(record.get("follow_links", False)),
            verify_tls=bool(record.get("verify_tls", True)),
            extract=ExtractRules.of(rules) if rules else None,
        )

    def as_record(self) -> dict[str, Any]:
        """A JSON-able dict of every setting (sets as sorted lists), as a job records it."""

        def plain(value: Any) -> Any:
            if isinstance(value, frozenset | set):
                return sorted(value)
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        record: dict[str, Any] = {}
        for setting in fields(self):
            value = getattr(self, setting.name)
            if isinstance(value, ExtractRules):
                record[setting.name] = value.as_record()  # ["name=rule", ...] in rule order
            elif is_dataclass(value) and not isinstance(value, type):
                record[setting.name] = plain(asdict(value))
            else:
                record[setting.name] = plain(value)
        return record
