"""shoal: fast, polite, crash-safe web fetching and crawling with asyncio.

The command line is ``shoal`` (see ``shoal --help``). From Python, stream
results (see ``docs/api.md``)::

    async for result in shoal.fetch(urls, per_host=4, extract={"title": "css:title::text"}):
        print(result.status, result.url, result.fields)

    async with shoal.Crawler(store="crawl.db", on_page=save) as crawler:
        await crawler.crawl(["https://example.com/"], depth=2)

or build the same frozen config objects the command builds::

    config = shoal.CrawlConfig(limits=shoal.Limits(concurrency=500))

The names below are the whole public API; everything else is internal.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING

from shoal.core.config import CrawlConfig, Limits, Politeness, RetryPolicy, Timeouts
from shoal.core.errors import (
    BrokerUnavailable,
    ConfigError,
    IllegalTransition,
    InputError,
    JobConflict,
    OutputError,
    SchemaError,
    ShoalError,
    StoreError,
    StoreUnavailable,
)
from shoal.core.extract import ExtractRules, FieldRule
from shoal.core.jobspec import JobSpec
from shoal.core.kinds import ErrorKind
from shoal.core.model import FetchResult, JobCounts, JobSummary
from shoal.core.ports import Store

if _TYPE_CHECKING:
    from shoal.api import Crawler, crawl, fetch, fetch_all

    __version__: str

_LAZY = frozenset({"Crawler", "crawl", "fetch", "fetch_all"})


def __getattr__(name: str) -> object:
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
    "BrokerUnavailable",
    "ConfigError",
    "CrawlConfig",
    "Crawler",
    "ErrorKind",
    "ExtractRules",
    "FetchResult",
    "FieldRule",
    "IllegalTransition",
    "InputError",
    "JobConflict",
    "JobCounts",
    "JobSpec",
    "JobSummary",
    "Limits",
    "OutputError",
    "Politeness",
    "RetryPolicy",
    "SchemaError",
    "ShoalError",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Timeouts",
    "__version__",
    "crawl",
    "fetch",
    "fetch_all",
]
