"""shoal: fast, polite, crash-safe web fetching and crawling with asyncio.

The command line is ``shoal`` (see ``shoal --help``). From Python, build the
same frozen config objects the CLI builds and run a ``Crawler`` on a store::

    from shoal import CrawlConfig, Limits, Politeness
    config = CrawlConfig(limits=Limits(concurrency=500), politeness=Politeness(per_host=4))

or use the streaming API (see ``shoal.api``)::

    async for result in shoal.fetch(urls, config=config, extract={"title": "css:title::text"}):
        print(result.status, result.url, result.fields)

    async with shoal.Crawler(store="crawl.db", on_page=save) as crawler:
        await crawler.crawl(["https://example.com/"], depth=2)
"""

from typing import TYPE_CHECKING, Any

from shoal.core.config import CrawlConfig, Limits, Politeness, RetryPolicy, Timeouts
from shoal.core.errors import (
    ConfigError,
    ConnectError,
    DNSError,
    FetchError,
    FetchTimeout,
    IllegalTransition,
    InputError,
    JobConflict,
    OutOfScope,
    PolicyError,
    ProtocolError,
    RetriesExhausted,
    RobotsDisallowed,
    SchemaError,
    ShoalError,
    StoreError,
    StoreUnavailable,
    TLSError,
    TooLarge,
    TooManyRedirects,
)
from shoal.core.extract import ExtractRules, FieldRule
from shoal.core.jobspec import JobSpec
from shoal.core.kinds import ErrorKind
from shoal.core.model import FetchResult, JobCounts, JobInfo, JobSummary, NewRequest, Request

if TYPE_CHECKING:
    from shoal.api import Crawler, crawl, fetch, fetch_all

    __version__: str

_LAZY = frozenset({"Crawler", "crawl", "fetch", "fetch_all"})


def __getattr__(name: str) -> Any:
    # The engine and the version lookup load on first use: a command, or a fetch
    # process of a crawl, that does not need them starts without paying for them.
    if name in _LAZY:
        from shoal import api

        value = getattr(api, name)
    elif name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("shoal")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            value = "0+unknown"
    else:
        raise AttributeError(f"module 'shoal' has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = [
    "ConfigError",
    "ConnectError",
    "CrawlConfig",
    "Crawler",
    "DNSError",
    "ErrorKind",
    "ExtractRules",
    "FetchError",
    "FetchResult",
    "FetchTimeout",
    "FieldRule",
    "IllegalTransition",
    "InputError",
    "JobConflict",
    "JobCounts",
    "JobInfo",
    "JobSpec",
    "JobSummary",
    "Limits",
    "NewRequest",
    "OutOfScope",
    "PolicyError",
    "Politeness",
    "ProtocolError",
    "Request",
    "RetriesExhausted",
    "RetryPolicy",
    "RobotsDisallowed",
    "SchemaError",
    "ShoalError",
    "StoreError",
    "StoreUnavailable",
    "TLSError",
    "Timeouts",
    "TooLarge",
    "TooManyRedirects",
    "__version__",
    "crawl",
    "fetch",
    "fetch_all",
]
