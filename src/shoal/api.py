"""The Python API: ``fetch`` and ``crawl`` stream results; ``fetch_all`` collects them;
a ``Crawler`` runs jobs on one store with hooks.

::

    async for result in shoal.fetch(["https://example.com/a", "https://example.com/b"]):
        print(result.status, result.url)

    results = shoal.fetch_all(urls)  # from plain synchronous code (or a notebook)

    async with shoal.Crawler(store="crawl.db", on_page=save, headers=by_host) as crawler:
        summary = await crawler.crawl(["https://example.com/"], depth=2)

Every call takes ``extract=`` rules (``{"title": "css:title::text"}``, see
``shoal.core.extract``); their values are in ``result.fields``.

Each call runs one job on one store, exactly as the CLI does. Without
``store=`` the store is a temporary SQLite file, removed when the generator
ends. With ``store=`` (and a ``job=`` name) the call resumes: requests are
deduplicated by canonical URL, so a URL the job already finished is not
fetched or yielded again; only what is new or was left unfinished is.

Backpressure. The crawler reports each committed batch to a listener on the
event loop, which must never block. The listener appends to a deque and wakes
the generator; the generator yields from the deque. So results are yielded as
soon as they are committed, and a slow consumer costs memory, not a stalled
loop: the deque holds the un-consumed results.

* ``fetch`` bounds that memory: URLs are admitted to the store in chunks, and
  the next chunk waits while ``max_buffered`` or more of the URLs admitted by
  this call have not been yielded yet (it goes on once half of them have). So
  at most about ``max_buffered`` + one chunk results are held.
* ``crawl`` cannot pause link discovery from outside the crawler, so its
  deque is unbounded: memory grows with the un-consumed results (bodies only
  with ``CrawlConfig(save_bodies=True)``). Consume promptly, or cap the crawl
  with ``max_pages``/``depth``.

Errors. What the API raises is a ``ShoalError`` (``InputError`` for a bad URL,
``ConfigError`` for a bad option or rule, ``StoreError``...), or the exception
a hook of yours raised — never an ``ExceptionGroup`` from the crawler's
``TaskGroup``: the error inside it is raised.

Stopping early. Leaving the generator (``break``, an exception, cancellation)
stops the crawler gracefully (in-flight fetches get the crawler's grace period,
unfinished rows are released for a later resume) and closes the store. Use
``contextlib.aclosing`` so that this happens at the ``break`` rather than when
the generator is garbage-collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Literal, Self, TypeAlias

from shoal._apirun import HeadersFor, RunHandle, opened_store, request_headers, stream_job
from shoal.core.config import CrawlConfig
from shoal.core.errors import ConfigError, InputError
from shoal.core.extract import ExtractRules
from shoal.core.inputs import parse_line
from shoal.core.model import FetchResult, JobSummary, NewRequest, Request, job_name
from shoal.core.robots import RobotsPolicy, ua_token
from shoal.core.scope import Scope
from shoal.core.traps import TrapLimits
from shoal.core.urls import canonical_host, canonicalize
from shoal.engine.processor import LinkProcessor
from shoal.store.base import Store

__all__ = ["Crawler", "Extract", "HeadersFor", "OnPage", "crawl", "fetch", "fetch_all"]

ScopeMode = Literal["host", "domain", "prefix", "any"]

Extract: TypeAlias = ExtractRules | Mapping[str, str] | Iterable[str]
"""Extraction rules: ``{"title": "css:title::text"}``, ``["title=css:title::text"]``, or
an ``ExtractRules``."""

OnPage: TypeAlias = Callable[[FetchResult], Awaitable[object] | object]
"""Called with each result as it is recorded; may be a coroutine function."""

DEFAULT_MAX_BUFFERED = 10_000
"""``fetch`` admits no more URLs while this many results wait to be consumed."""


async def fetch(
    urls: Iterable[str],
    *,
    store: str | None = None,
    job: str | None = None,
    concurrency: int | None = None,
    per_host: int | None = None,
    config: CrawlConfig | None = None,
    max_buffered: int = DEFAULT_MAX_BUFFERED,
    extract: Extract | None = None,
) -> AsyncGenerator[FetchResult, None]:
    """Fetch every URL once, yielding each result as soon as it is recorded.

    ``urls`` items are URLs or JSON request lines, as in ``shoal fetch`` input;
    blank items and ``#`` comments are skipped. Every item is checked first:
    an invalid one raises ``InputError`` (with its 1-based position as
    ``line_no``) before anything is fetched. ``concurrency`` and ``per_host``
    override ``config`` (defaults: 256 and 8). ``extract`` rules (checked
    first too: a bad one raises ``ConfigError``) fill ``result.fields``.
    Results come in completion order, not input order.
    """
    plan = _fetch_plan(urls, concurrency, per_host, config, max_buffered, extract)
    async with opened_store(store) as backend:
        async with contextlib.aclosing(
            stream_job(plan.requests, backend=backend, job=job or "fetch", **plan.options)
        ) as results:
            async for result in results:
                yield result


async def crawl(
    seeds: Iterable[str],
    *,
    depth: int | None = None,
    per_host: int | None = None,
    scope: ScopeMode = "host",
    store: str | None = None,
    job: str | None = None,
    obey_robots: bool = True,
    config: CrawlConfig | None = None,
    max_pages: int | None = None,
    extract: Extract | None = None,
) -> AsyncGenerator[FetchResult, None]:
    """Crawl from ``seeds``, following links within ``scope``; yield each result as recorded.

    Built as ``shoal crawl`` builds it: ``scope`` is ``host`` (the seeds'
    hosts), ``domain``, ``prefix`` or ``any``; ``depth`` limits link levels from
    a seed (crawled level by level); ``max_pages`` caps the URLs admitted;
    robots.txt is fetched and obeyed unless ``obey_robots=False``.
    ``per_host`` overrides ``config`` (default 2 requests in flight per host
    when no ``config`` is given). ``extract`` rules fill ``result.fields``. A
    bad seed raises ``InputError``, a bad rule ``ConfigError``, before
    anything is fetched.
    """
    plan = _crawl_plan(seeds, depth, per_host, scope, obey_robots, config, max_pages, extract)
    async with opened_store(store) as backend:
        async with contextlib.aclosing(
            stream_job(plan.requests, backend=backend, job=job or plan.job, **plan.options)
        ) as results:
            async for result in results:
                yield result


def fetch_all(
    urls: Iterable[str],
    *,
    store: str | None = None,
    job: str | None = None,
    concurrency: int | None = None,
    per_host: int | None = None,
    config: CrawlConfig | None = None,
    extract: Extract | None = None,
) -> list[FetchResult]:
    """Fetch every URL (as ``fetch``) and return all results, from synchronous code.

    In a plain script this runs its own event loop (``asyncio.run``). Called
    where a loop is already running on this thread (Jupyter, or a coroutine),
    it runs the fetch on a fresh loop in a worker thread and waits for it, so
    it still works, but it blocks the calling loop meanwhile: from async code,
    prefer ``async for ... in fetch(...)``.
    """
    items = list(urls)

    async def collect() -> list[FetchResult]:
        results = fetch(
            items,
            store=store,
            job=job,
            concurrency=concurrency,
            per_host=per_host,
            config=config,
            extract=extract,
        )
        async with contextlib.aclosing(results):
            return [result async for result in results]

    return _run_sync(collect())


class Crawler:
    """Fetch and crawl jobs on one store, with hooks.

    ::

        async def save(page: shoal.FetchResult) -> None:
            print(page.status, page.url, page.fields)

        async with shoal.Crawler(
            store="crawl.db",
            extract={"title": "css:title::text"},
            on_page=save,
            headers={"api.example.com": {"Authorization": "Bearer …"}},
        ) as crawler:
            summary = await crawler.crawl(["https://example.com/"], depth=2)
            print(summary.counts.done, "pages")

    ``store`` is a path or URL, as ``shoal --store`` takes (default: a
    temporary SQLite file, removed on exit); it is opened on entering the
    ``async with`` and closed on leaving it. ``config``, ``concurrency``,
    ``per_host`` and ``extract`` are as for ``shoal.fetch``/``shoal.crawl``.

    Hooks:

    * ``on_page(result)`` — called with every result as it is recorded, in
      order, one at a time (a coroutine function is awaited). While it runs,
      the crawler goes on fetching; results wait for it in memory. An
      exception it raises stops the job gracefully and is raised by
      ``crawl``/``fetch``.
    * ``headers`` — extra request headers by host name (no port), a mapping
      ``{host: {name: value}}`` or a function ``headers_for(host)`` returning
      a mapping or None, called for every request. ``auth`` — HTTP basic auth
      by host, ``{host: (user, password)}``. A request's own headers (from a
      JSON input line) win over these. They are sent, never stored.

    ``crawl`` and ``fetch`` run one job at a time and return the job's
    ``JobSummary``; ``stop()`` (from a hook, say) ends the running job
    gracefully: it is resumed by running it again with the same ``job``.
    """

    def __init__(
        self,
        *,
        store: str | None = None,
        config: CrawlConfig | None = None,
        concurrency: int | None = None,
        per_host: int | None = None,
        extract: Extract | None = None,
        on_page: OnPage | None = None,
        headers: HeadersFor | None = None,
        auth: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        if on_page is not None and not callable(on_page):
            raise ConfigError(f"on_page must be callable, got {on_page!r}")
        self._location = store
        self._config = config
        self._concurrency = concurrency
        self._per_host = per_host
        self._extract = _rules(extract)
        self._on_page = on_page
        self._before_fetch: Callable[[Request], Request] | None = request_headers(headers, auth)
        self._stack: contextlib.AsyncExitStack | None = None
        self._store: Store | None = None
        self._running: RunHandle | None = None

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise ConfigError("this Crawler is already open")
        stack = contextlib.AsyncExitStack()
        self._store = await stack.enter_async_context(opened_store(self._location))
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        stack, self._stack, self._store = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    @property
    def store(self) -> Store:
        """The open store (to read results of earlier jobs: ``store.iter_results``...)."""
        if self._store is None:
            raise ConfigError("open the Crawler first: async with shoal.Crawler(...) as crawler")
        return self._store

    def stop(self) -> None:
        """End the running job gracefully (in-flight fetches finish, the rest is released)."""
        running = self._running
        if running is not None and running.crawler is not None:
            running.crawler.stop()

    async def fetch(
        self,
        urls: Iterable[str],
        *,
        job: str | None = None,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
    ) -> JobSummary:
        """Fetch every URL once (as ``shoal.fetch``), calling ``on_page`` with each result."""
        plan = _fetch_plan(
            urls, self._concurrency, self._per_host, self._config, max_buffered, self._extract
        )
        return await self._run(plan, job or "fetch")

    async def crawl(
        self,
        seeds: Iterable[str],
        *,
        depth: int | None = None,
        scope: ScopeMode = "host",
        job: str | None = None,
        obey_robots: bool = True,
        max_pages: int | None = None,
    ) -> JobSummary:
        """Crawl from ``seeds`` (as ``shoal.crawl``), calling ``on_page`` with each result."""
        plan = _crawl_plan(
            seeds,
            depth,
            self._per_host,
            scope,
            obey_robots,
            self._config,
            max_pages,
            self._extract,
            concurrency=self._concurrency,
        )
        return await self._run(plan, job or plan.job)

    async def _run(self, plan: _Plan, job: str) -> JobSummary:
        backend = self.store
        if self._running is not None:
            raise ConfigError("this Crawler is running a job already; one at a time")
        handle = self._running = RunHandle()
        on_page = self._on_page
        try:
            results = stream_job(
                plan.requests,
                backend=backend,
                job=job,
                before_fetch=self._before_fetch,
                handle=handle,
                **plan.options,
            )
            async with contextlib.aclosing(results):
                async for result in results:
                    if on_page is not None:
                        outcome = on_page(result)
                        if inspect.isawaitable(outcome):
                            await outcome
            assert handle.job is not None
            return await backend.summary(handle.job.id)
        finally:
            self._running = None


# -- internals -------------------------------------------------------------


@dataclasses.dataclass
class _Plan:
    """A job checked and built, before any I/O: what ``stream_job`` runs."""

    requests: list[NewRequest]
    options: dict[str, Any]
    job: str = "fetch"


def _rules(extract: Extract | None) -> ExtractRules | None:
    if extract is None or isinstance(extract, ExtractRules):
        return extract
    return ExtractRules.of(extract)


def _fetch_plan(
    urls: Iterable[str],
    concurrency: int | None,
    per_host: int | None,
    config: CrawlConfig | None,
    max_buffered: int,
    extract: Extract | None,
) -> _Plan:
    requests = _parse_urls(urls)
    if max_buffered < 1:
        raise ConfigError(f"max_buffered must be > 0, got {max_buffered!r}")
    run_config = _configure(
        config or CrawlConfig(),
        concurrency=concurrency,
        per_host=per_host,
        follow_links=False,
        extract=_rules(extract),
    )
    return _Plan(requests, {"mode": "fetch", "config": run_config, "max_buffered": max_buffered})


_MAX_COUNT = 2**62  # what the stores' 64-bit integers hold with room to spare


def _check_count(name: str, value: int | None, *, allow_zero: bool = False) -> None:
    """A limit given as a count: None, or a whole number in range (bool is not one)."""
    if value is None:
        return
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= _MAX_COUNT:
        raise ConfigError(
            f"{name} must be a whole number from {low} to {_MAX_COUNT}, got {value!r}"
        )


def _crawl_plan(
    seeds: Iterable[str],
    depth: int | None,
    per_host: int | None,
    scope: ScopeMode,
    obey_robots: bool,
    config: CrawlConfig | None,
    max_pages: int | None,
    extract: Extract | None,
    *,
    concurrency: int | None = None,
) -> _Plan:
    canonical_seeds: list[str] = []
    for line_no, seed in enumerate(seeds, start=1):
        try:
            canonical_seeds.append(canonicalize(seed))
        except InputError as exc:
            raise InputError(f"{seed!r}: {exc.reason}", line_no=line_no) from None
    if not canonical_seeds:
        raise InputError("no seeds given")
    _check_count("max_pages", max_pages)
    _check_count("depth", depth, allow_zero=True)
    if per_host is None and config is None:
        per_host = 2
    run_config = _configure(
        config or CrawlConfig(),
        concurrency=concurrency,
        per_host=per_host,
        follow_links=True,
        extract=_rules(extract),
    )
    robots = (
        RobotsPolicy(
            user_agent_token=ua_token(run_config.user_agent),
            max_crawl_delay=run_config.politeness.max_crawl_delay,
        )
        if obey_robots
        else None
    )
    processor = LinkProcessor(
        scope=Scope(mode=scope, seeds=tuple(canonical_seeds), max_depth=depth),
        traps=TrapLimits(),
        robots_token=robots.user_agent_token if robots is not None else "shoal",
    )
    options: dict[str, Any] = {
        "mode": "crawl",
        "config": run_config,
        "processor": processor,
        "robots": robots,
        "strict_depth": depth is not None,
        "limit_pages": True,
        "max_pages": max_pages,
    }
    return _Plan(
        [NewRequest.for_url(url) for url in canonical_seeds],
        options,
        job_name(canonical_host(canonical_seeds[0]), default="crawl"),
    )


def _run_sync(coro: Coroutine[Any, Any, list[FetchResult]]) -> list[FetchResult]:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # asyncio.run refuses to nest inside a running loop: give the work its own thread and loop.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shoal-fetch-all") as pool:
        return pool.submit(asyncio.run, coro).result()


def _parse_urls(urls: Iterable[str]) -> list[NewRequest]:
    requests: list[NewRequest] = []
    for line_no, url in enumerate(urls, start=1):
        if not isinstance(url, str):
            raise InputError(f"expected a str, got {type(url).__name__}", line_no=line_no)
        request = parse_line(url, line_no)
        if request is not None:
            requests.append(request)
    return requests


def _configure(
    config: CrawlConfig,
    *,
    concurrency: int | None,
    per_host: int | None,
    follow_links: bool,
    extract: ExtractRules | None,
) -> CrawlConfig:
    limits, politeness = config.limits, config.politeness
    if concurrency is not None:
        limits = dataclasses.replace(limits, concurrency=concurrency)
    if per_host is not None:
        politeness = dataclasses.replace(politeness, per_host=per_host)
    return dataclasses.replace(
        config,
        limits=limits,
        politeness=politeness,
        follow_links=follow_links,
        extract=extract if extract is not None else config.extract,
    )
