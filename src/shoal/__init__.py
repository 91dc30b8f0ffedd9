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

from importlib.metadata import PackageNotFoundError, version

from shoal.api import Crawler, crawl, fetch, fetch_all
from shoal.core.config import CrawlConfig, Limits, Politeness, RetryPolicy, Timeouts
from shoal.core.errors import (
    ConfigError,
    ConnectError,
    DNSError,
    FetchError,
    FetchTimeout,
    IllegalTransition,
    InputError,
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
from shoal.core.kinds import ErrorKind
from shoal.core.model import FetchResult, JobCounts, JobInfo, JobSummary, NewRequest, Request

try:
    __version__ = version("shoal")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

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
    "JobCounts",
    "JobInfo",
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
