"""Configuration as frozen, keyword-only value objects, validated on creation.

The CLI, the service and the Python API all build these same objects; only
the edges read flags, environment variables and TOML.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

from shoal.core.errors import ConfigError
from shoal.core.extract import ExtractRules
from shoal.core.proxies import check_proxy, is_socks, redacted

__all__ = [
    "DEFAULT_USER_AGENT",
    "AUTO_PYREQWEST_CONCURRENCY",
    "HTTP_CLIENTS",
    "MAX_HOST_LENGTH",
    "CrawlConfig",
    "Limits",
    "Politeness",
    "RetryPolicy",
    "Timeouts",
    "check_bool",
    "check_header_value",
    "check_host_name",
    "check_int",
    "check_number",
]

DEFAULT_USER_AGENT = "shoal/0.1 (+https://github.com/shoal-crawler/shoal)"
MiB = 1024 * 1024
HTTP_CLIENTS = ("auto", "aiohttp", "pyreqwest")
"""The HTTP clients a run can fetch with (``CrawlConfig.http``); the first is the default.
``auto`` is one of the other two, chosen for each run by ``engine.transport.client_for``."""
AUTO_PYREQWEST_CONCURRENCY = 1024
"""``auto`` fetches with pyreqwest up to this concurrency, with aiohttp above it: pyreqwest
costs less CPU per page, but holds more memory per open connection (docs/benchmarks.md)."""


MAX_HOST_LENGTH = 253  # characters in a domain name, without a trailing dot (RFC 1035)

# Characters a header value may not hold (RFC 9110 §5.5): controls other than tab.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

# Small checks of one value each, raising ConfigError with a one-line message naming it:
# every place that turns user input into configuration (these dataclasses, the CLI's TOML,
# a job description) uses the same ones.


def check_int(name: str, value: object, *, minimum: int = 1) -> int:
    """``value`` as an int of at least ``minimum``; ``True`` is not an integer here."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {_shown(value)}")
    if value < minimum:
        raise ConfigError(f"{name} must be ≥ {minimum}, got {value!r}")
    return value


def check_number(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as a finite number > 0 (≥ 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {_shown(value)}")
    if not math.isfinite(value):  # NaN passes every comparison; infinity is no limit
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be {bound}, got {value!r}")
    return value


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {_shown(value)}")
    return value


def check_header_value(name: str, value: object, *, empty: bool = True) -> str:
    """``value`` as text that can be sent as one header value: no control characters
    (tab aside), no line breaks."""
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {_shown(value)}")
    if not empty and not value.strip():
        raise ConfigError(f"{name} must not be empty")
    bad = _CONTROL.search(value)
    if bad is not None:
        raise ConfigError(
            f"{name} must not contain control characters, got {bad.group()!r} "
            f"at position {bad.start()}"
        )
    return value


def check_host_name(name: str, value: object) -> str:
    """``value`` as a host name a resolver can look up: at most 253 characters, labels
    of 1 to 63 (an IP address passes)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} must be a non-empty host name, got {_shown(value)}")
    host = value.strip().rstrip(".")
    if len(host) > MAX_HOST_LENGTH:
        raise ConfigError(
            f"{name} is {len(host)} characters long; a host name has at most {MAX_HOST_LENGTH}"
        )
    if not host.startswith("[") and any(not 0 < len(label) <= 63 for label in host.split(".")):
        raise ConfigError(f"{name} {host[:80]!r} has an empty label or one over 63 characters")
    return value


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _positive(name: str, value: object, *, allow_zero: bool = False) -> None:
    check_number(name, value, allow_zero=allow_zero)


def _count(name: str, value: object, *, allow_zero: bool = False) -> None:
    check_int(name, value, minimum=0 if allow_zero else 1)


@dataclass(frozen=True, kw_only=True, slots=True)
class Limits:
    """How much work at once, and how much of each response.

    ``processes``: child processes doing the HTTP (see ``engine.fetch.pool``); ``None``
    lets the run decide (one per core beyond the first, once the job is big enough).
    ``rate``: request starts per second over all hosts, for each process running the job
    (``None``: no limit beyond the per-host ones).
    """

    concurrency: int = 256
    max_bytes: int = 10 * MiB
    max_redirects: int = 10
    processes: int | None = None
    rate: float | None = None

    def __post_init__(self) -> None:
        _count("concurrency", self.concurrency)
        if self.processes is not None:
            _count("processes", self.processes, allow_zero=True)
        _count("max_bytes", self.max_bytes)
        _count("max_redirects", self.max_redirects, allow_zero=True)
        if self.rate is not None:
            _positive("rate", self.rate)


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
        _count("per_host", self.per_host)
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
        _count("retries", self.retries, allow_zero=True)
        _positive("backoff_base", self.backoff_base, allow_zero=True)
        _positive("backoff_cap", self.backoff_cap, allow_zero=True)
        _positive("retry_after_cap", self.retry_after_cap, allow_zero=True)
        for status in self.retry_statuses:
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
                raise ConfigError(f"retry status must be an HTTP status, got {status!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class CrawlConfig:
    """Everything one job run needs to know; ``follow_links`` makes it a crawl.

    ``extract``: rules whose values are recorded per page as ``FetchResult.fields``.
    ``http``: the HTTP client under the fetcher (one of ``HTTP_CLIENTS``; the engine
    chooses one for ``auto``: ``shoal.engine.fetch.transport.client_for``); ``http2`` lets it
    negotiate HTTP/2 over TLS (ALPN) where it can (pyreqwest; aiohttp speaks HTTP/1.1
    only).
    ``proxies``: what requests go through (one is ``--proxy``; several rotate, see
    ``shoal.core.proxies``); none: the ``http_proxy``/``https_proxy``/``all_proxy``/
    ``no_proxy`` environment variables if ``proxy_env``, else direct. A job records its
    proxies without their credentials.
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
    http: str = HTTP_CLIENTS[0]
    http2: bool = False
    proxies: tuple[str, ...] = ()
    proxy_env: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "proxies", tuple(check_proxy(p) for p in self.proxies))
        if len(self.proxies) > 1 and any(is_socks(p) for p in self.proxies):
            raise ConfigError("a SOCKS proxy does not rotate: give it alone")
        check_header_value("user agent", self.user_agent, empty=False)
        for name in ("save_bodies", "follow_links", "verify_tls", "http2"):
            check_bool(name, getattr(self, name))
        if self.http not in HTTP_CLIENTS:
            raise ConfigError(f"http must be one of {', '.join(HTTP_CLIENTS)}, got {self.http!r}")
        if self.http2 and self.http == "aiohttp":
            raise ConfigError("http2 needs the pyreqwest client (aiohttp speaks HTTP/1.1 only)")
        if self.proxies and self.http == "pyreqwest":
            raise ConfigError("proxies need the aiohttp client")
        if self.proxies and self.http2:
            raise ConfigError("http2 needs the pyreqwest client, and proxies the aiohttp one")
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
            http=str(record.get("http") or HTTP_CLIENTS[0]),
            http2=bool(record.get("http2", False)),
            proxies=tuple(record.get("proxies") or ()),
            proxy_env=bool(record.get("proxy_env", True)),
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
            if setting.name == "proxies":
                record["proxies"] = [redacted(proxy) for proxy in value]  # never a password
            elif isinstance(value, ExtractRules):
                record[setting.name] = value.as_record()  # ["name=rule", ...] in rule order
            elif is_dataclass(value) and not isinstance(value, type):
                record[setting.name] = plain(asdict(value))
            else:
                record[setting.name] = plain(value)
        return record
