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

Each call builds a ``JobSpec`` and runs it through the same runner as the CLI
(``shoal.engine.run.runner``). Without ``store=`` the store is a temporary SQLite
file, removed when the generator ends. With ``store=`` a call resumes its job:
requests are deduplicated by canonical URL, so a URL the job already finished
is not fetched or yielded again; only what is new or was left unfinished is.
A job is named by ``job=`` or, without it, as the CLI names it; a rerun whose
settings cannot apply to the job raises ``JobConflict`` (``fresh=True`` starts
the job over; ``refetch="failed"`` or ``"all"`` fetches finished URLs again;
``recrawl=True`` asks finished URLs again whether they changed: see ``fetch``).

Results carry their bodies by default (``result.body`` up to the config's
``max_bytes``, ``result.text`` decoded); ``bodies=False`` leaves them out.

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
  deque is unbounded: memory grows with the un-consumed results (and their
  bodies, unless ``bodies=False``). Consume promptly, or cap the crawl
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
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self, TypeAlias

from shoal._apirun import HeadersFor, RunHandle, opened_store, request_headers, stream_job
from shoal._apispec import (
    Extract,
    ScopeMode,
    crawl_spec,
    extract_rules,
    fetch_plan,
    recrawl_of,
    with_history,
)
from shoal.core.config import CrawlConfig
from shoal.core.errors import ConfigError
from shoal.core.jobspec import JobSpec
from shoal.core.model import FetchResult, JobSummary, NewRequest, Request
from shoal.core.ports import Store
from shoal.core.revisit import Recrawl
from shoal.engine.run.runner import Refetch

__all__ = ["Crawler", "Extract", "HeadersFor", "OnPage", "crawl", "fetch", "fetch_all"]


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
    bodies: bool = True,
    fresh: bool = False,
    refetch: Refetch | None = None,
    recrawl: bool = False,
    revisit_after: float | str | None = None,
    keep_history: int | None = None,
) -> AsyncGenerator[FetchResult, None]:
    """Fetch every URL once, yielding each result as soon as it is recorded.

    ``urls`` items are URLs or JSON request lines, as in ``shoal fetch`` input;
    blank items and ``#`` comments are skipped. Every item is checked first:
    an invalid one raises ``InputError`` (with its 1-based position as
    ``line_no``) before anything is fetched. ``concurrency`` and ``per_host``
    override ``config`` (defaults: 256 and 8). ``extract`` rules (checked
    first too: a bad one raises ``ConfigError``) fill ``result.fields``.
    Results come in completion order, not input order.

    Each result carries its body (``result.body``, ``result.text``), up to the
    config's ``max_bytes``; ``bodies=False`` keeps them out (and out of the store).
    ``store``, ``job``, ``fresh`` and ``refetch`` are as for ``shoal fetch``: see
    ``shoal.JobSpec`` for how a job is named and when a rerun resumes it.

    ``recrawl=True`` asks the job's finished URLs again whether they changed, as
    ``shoal fetch --recrawl`` does; ``revisit_after`` (seconds, or ``"30m"``, ``"1d"``...,
    implying ``recrawl``) only those fetched longer ago; ``keep_history`` is how many
    replaced results the job keeps per URL. Each answer is yielded as it came, its
    ``result.change`` saying what it meant (``unchanged``, ``changed``, ``gone``; None
    for a URL the job did not have); the store keeps an unchanged page's result as it was.
    """
    plan = fetch_plan(urls, concurrency, per_host, config, extract, bodies)
    spec = with_history(plan.spec, keep_history)
    again = recrawl_of(recrawl, revisit_after)
    if max_buffered < 1:
        raise ConfigError(f"max_buffered must be > 0, got {max_buffered!r}")
    async with opened_store(store) as backend:
        async with contextlib.aclosing(
            stream_job(
                spec,
                plan.requests,
                backend=backend,
                job=job,
                fresh=fresh,
                refetch=refetch,
                recrawl=again,
                max_buffered=max_buffered,
            )
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
    bodies: bool = True,
    fresh: bool = False,
    refetch: Refetch | None = None,
    recrawl: bool = False,
    revisit_after: float | str | None = None,
    keep_history: int | None = None,
) -> AsyncGenerator[FetchResult, None]:
    """Crawl from ``seeds``, following links within ``scope``; yield each result as recorded.

    Built as ``shoal crawl`` builds it: ``scope`` is ``host`` (the seeds'
    hosts), ``domain``, ``prefix`` or ``any``; ``depth`` limits link levels from
    a seed (crawled level by level); ``max_pages`` caps the URLs admitted;
    robots.txt is fetched and obeyed unless ``obey_robots=False``.
    ``per_host`` overrides ``config`` (default 2 requests in flight per host
    when no ``config`` is given). ``extract`` rules fill ``result.fields``. A
    bad seed raises ``InputError``, a bad rule ``ConfigError``, before
    anything is fetched. ``bodies``, ``fresh``, ``refetch``, ``recrawl``, ``revisit_after``
    and ``keep_history`` are as for ``fetch``; a recrawl follows the links of changed
    pages within the scope, so new pages join the job.
    """
    spec = crawl_spec(
        seeds, depth, per_host, scope, obey_robots, config, max_pages, extract, bodies
    )
    spec = with_history(spec, keep_history)
    again = recrawl_of(recrawl, revisit_after)
    async with opened_store(store) as backend:
        async with contextlib.aclosing(
            stream_job(
                spec, (), backend=backend, job=job, fresh=fresh, refetch=refetch, recrawl=again
            )
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
    bodies: bool = True,
    fresh: bool = False,
    refetch: Refetch | None = None,
    recrawl: bool = False,
    revisit_after: float | str | None = None,
    keep_history: int | None = None,
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
            bodies=bodies,
            fresh=fresh,
            refetch=refetch,
            recrawl=recrawl,
            revisit_after=revisit_after,
            keep_history=keep_history,
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
        bodies: bool = False,
    ) -> None:
        if on_page is not None and not callable(on_page):
            raise ConfigError(f"on_page must be callable, got {on_page!r}")
        self._location = store
        self._config = config
        self._concurrency = concurrency
        self._per_host = per_host
        self._extract = extract_rules(extract)
        self._bodies = bodies
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
        if running is not None and running.runner is not None:
            running.runner.stop()

    async def fetch(
        self,
        urls: Iterable[str],
        *,
        job: str | None = None,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        fresh: bool = False,
        refetch: Refetch | None = None,
        recrawl: bool = False,
        revisit_after: float | str | None = None,
        keep_history: int | None = None,
    ) -> JobSummary:
        """Fetch every URL once (as ``shoal.fetch``), calling ``on_page`` with each result."""
        plan = fetch_plan(
            urls, self._concurrency, self._per_host, self._config, self._extract, self._bodies
        )
        if max_buffered < 1:
            raise ConfigError(f"max_buffered must be > 0, got {max_buffered!r}")
        return await self._run(
            with_history(plan.spec, keep_history),
            plan.requests,
            job=job,
            fresh=fresh,
            refetch=refetch,
            recrawl=recrawl_of(recrawl, revisit_after),
            max_buffered=max_buffered,
        )

    async def crawl(
        self,
        seeds: Iterable[str],
        *,
        depth: int | None = None,
        scope: ScopeMode = "host",
        job: str | None = None,
        obey_robots: bool = True,
        max_pages: int | None = None,
        fresh: bool = False,
        refetch: Refetch | None = None,
        recrawl: bool = False,
        revisit_after: float | str | None = None,
        keep_history: int | None = None,
    ) -> JobSummary:
        """Crawl from ``seeds`` (as ``shoal.crawl``), calling ``on_page`` with each result."""
        spec = crawl_spec(
            seeds,
            depth,
            self._per_host,
            scope,
            obey_robots,
            self._config,
            max_pages,
            self._extract,
            self._bodies,
            concurrency=self._concurrency,
        )
        return await self._run(
            with_history(spec, keep_history),
            (),
            job=job,
            fresh=fresh,
            refetch=refetch,
            recrawl=recrawl_of(recrawl, revisit_after),
        )

    async def run(
        self, spec: JobSpec, *, job: str | None = None, fresh: bool = False
    ) -> JobSummary:
        """Run a crawl ``spec`` as built (``JobSpec.crawl(...)``), calling ``on_page``."""
        if spec.kind != "crawl":
            raise ConfigError("run takes a crawl spec; fetch a list of URLs with fetch()")
        return await self._run(spec, (), job=job, fresh=fresh, refetch=None)

    async def _run(
        self,
        spec: JobSpec,
        requests: list[NewRequest] | tuple[()],
        *,
        job: str | None,
        fresh: bool,
        refetch: Refetch | None,
        recrawl: Recrawl | None = None,
        max_buffered: int | None = None,
    ) -> JobSummary:
        backend = self.store
        if self._running is not None:
            raise ConfigError("this Crawler is running a job already; one at a time")
        handle = self._running = RunHandle()
        on_page = self._on_page
        try:
            results = stream_job(
                spec,
                requests,
                backend=backend,
                job=job,
                fresh=fresh,
                refetch=refetch,
                recrawl=recrawl,
                max_buffered=max_buffered,
                before_fetch=self._before_fetch,
                handle=handle,
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


def _run_sync(coro: Coroutine[Any, Any, list[FetchResult]]) -> list[FetchResult]:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # asyncio.run refuses to nest inside a running loop: give the work its own thread and loop.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shoal-fetch-all") as pool:
        return pool.submit(asyncio.run, coro).result()
