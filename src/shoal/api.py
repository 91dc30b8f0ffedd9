"""The Python API: ``fetch`` and ``crawl`` stream results; ``fetch_all`` collects them.

::

    async for result in shoal.fetch(["https://example.com/a", "https://example.com/b"]):
        print(result.status, result.url)

    results = shoal.fetch_all(urls)  # from plain synchronous code (or a notebook)

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
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import AsyncGenerator, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from shoal.core.config import CrawlConfig
from shoal.core.errors import ConfigError, InputError
from shoal.core.inputs import parse_line
from shoal.core.model import FetchResult, NewRequest, job_name
from shoal.core.robots import RobotsPolicy, ua_token
from shoal.core.scope import Scope
from shoal.core.traps import TrapLimits
from shoal.core.urls import canonical_host, canonicalize
from shoal.engine.crawler import Crawler, Processor
from shoal.engine.processor import LinkProcessor
from shoal.store import open_store

__all__ = ["crawl", "fetch", "fetch_all"]

ScopeMode = Literal["host", "domain", "prefix", "any"]

DEFAULT_MAX_BUFFERED = 10_000
"""``fetch`` admits no more URLs while this many results wait to be consumed."""

_ADMIT_CHUNK = 1000


async def fetch(
    urls: Iterable[str],
    *,
    store: str | None = None,
    job: str | None = None,
    concurrency: int | None = None,
    per_host: int | None = None,
    config: CrawlConfig | None = None,
    max_buffered: int = DEFAULT_MAX_BUFFERED,
) -> AsyncGenerator[FetchResult, None]:
    """Fetch every URL once, yielding each result as soon as it is recorded.

    ``urls`` items are URLs or JSON request lines, as in ``shoal fetch`` input;
    blank items and ``#`` comments are skipped. Every item is checked first:
    an invalid one raises ``InputError`` (with its 1-based position as
    ``line_no``) before anything is fetched. ``concurrency`` and ``per_host``
    override ``config`` (defaults: 256 and 8). Results come in completion
    order, not input order.
    """
    requests = _parse_urls(urls)
    if max_buffered < 1:
        raise ConfigError(f"max_buffered must be > 0, got {max_buffered!r}")
    run_config = _configure(
        config or CrawlConfig(), concurrency=concurrency, per_host=per_host, follow_links=False
    )
    async with contextlib.aclosing(
        _stream(
            requests,
            store=store,
            job=job or "fetch",
            mode="fetch",
            config=run_config,
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
) -> AsyncGenerator[FetchResult, None]:
    """Crawl from ``seeds``, following links within ``scope``; yield each result as recorded.

    Built as ``shoal crawl`` builds it: ``scope`` is ``host`` (the seeds'
    hosts), ``domain``, ``prefix`` or ``any``; ``depth`` limits link levels from
    a seed (crawled level by level); ``max_pages`` caps the URLs admitted;
    robots.txt is fetched and obeyed unless ``obey_robots=False``.
    ``per_host`` overrides ``config`` (default 2 requests in flight per host
    when no ``config`` is given). A bad seed raises ``InputError`` before
    anything is fetched.
    """
    canonical_seeds: list[str] = []
    for line_no, seed in enumerate(seeds, start=1):
        try:
            canonical_seeds.append(canonicalize(seed))
        except InputError as exc:
            raise InputError(f"{seed!r}: {exc.reason}", line_no=line_no) from None
    if not canonical_seeds:
        raise InputError("no seeds given")
    if per_host is None and config is None:
        per_host = 2
    run_config = _configure(
        config or CrawlConfig(), concurrency=None, per_host=per_host, follow_links=True
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
    requests = [NewRequest.for_url(url) for url in canonical_seeds]
    async with contextlib.aclosing(
        _stream(
            requests,
            store=store,
            job=job or job_name(canonical_host(canonical_seeds[0]), default="crawl"),
            mode="crawl",
            config=run_config,
            processor=processor,
            robots=robots,
            strict_depth=depth is not None,
            limit_pages=True,
            max_pages=max_pages,
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
        )
        async with contextlib.aclosing(results):
            return [result async for result in results]

    return _run_sync(collect())


# -- internals -------------------------------------------------------------


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
    config: CrawlConfig, *, concurrency: int | None, per_host: int | None, follow_links: bool
) -> CrawlConfig:
    limits, politeness = config.limits, config.politeness
    if concurrency is not None:
        limits = dataclasses.replace(limits, concurrency=concurrency)
    if per_host is not None:
        politeness = dataclasses.replace(politeness, per_host=per_host)
    return dataclasses.replace(
        config, limits=limits, politeness=politeness, follow_links=follow_links
    )


async def _stream(
    requests: Sequence[NewRequest],
    *,
    store: str | None,
    job: str,
    mode: str,
    config: CrawlConfig,
    processor: Processor | None = None,
    robots: RobotsPolicy | None = None,
    strict_depth: bool = False,
    limit_pages: bool = False,
    max_pages: int | None = None,
    max_buffered: int | None = None,
) -> AsyncGenerator[FetchResult, None]:
    """Run one job, yielding results as the crawler commits them (see the module docstring)."""
    temp_dir: str | None = None
    if store is None:
        temp_dir = await asyncio.to_thread(tempfile.mkdtemp, prefix="shoal-")
        location = os.path.join(temp_dir, "shoal.db")
    else:
        location = store
    try:
        backend = open_store(location)
        await backend.open()
        try:
            existing = await backend.get_job(job)
            if existing is not None and existing.mode != mode:
                raise ConfigError(
                    f"job {job!r} is a {existing.mode} job in {backend.location}; "
                    "choose another job name"
                )
            info = await backend.ensure_job(job, mode=mode, config=config.as_record())
            if limit_pages:
                await backend.set_limits(info.id, max_pages=max_pages, max_pages_per_host=None)

            pending: deque[FetchResult] = deque()
            arrived = asyncio.Event()  # a batch was committed, or the run ended
            drained = asyncio.Event()  # the consumer has caught up (or we are stopping)

            def on_results(batch: Sequence[FetchResult]) -> None:
                # Called on the loop by the crawler's flusher: never block here.
                pending.extend(batch)
                arrived.set()

            crawler = Crawler(
                backend,
                info,
                config,
                processor=processor,
                listeners=[on_results],
                robots=robots,
                strict_depth=strict_depth,
            )

            # Requests admitted by this call and not yet yielded: what a slow consumer holds.
            outstanding = 0
            chunk_size = min(_ADMIT_CHUNK, max_buffered or _ADMIT_CHUNK)

            async def admission(running: Crawler) -> None:
                nonlocal outstanding
                for start in range(0, len(requests), chunk_size):
                    while (
                        max_buffered is not None
                        and outstanding >= max_buffered
                        and not running.stopping
                    ):
                        drained.clear()
                        await drained.wait()
                    if running.stopping:
                        return
                    chunk = requests[start : start + chunk_size]
                    added = await backend.add_requests(info.id, chunk, now=time.time())
                    outstanding += added
                    running.note_admitted(added)

            run_task = asyncio.create_task(crawler.run(admission), name="shoal-api-run")
            run_task.add_done_callback(lambda _task: arrived.set())
            try:
                low_water = (max_buffered or 0) // 2
                while True:
                    while pending:
                        result = pending.popleft()
                        outstanding -= 1
                        if outstanding <= low_water:
                            drained.set()
                        yield result
                    if run_task.done():
                        break
                    arrived.clear()
                    await arrived.wait()
                await run_task  # raises what the run raised
            finally:
                crawler.stop()
                drained.set()
                await _finish(run_task)
        finally:
            with contextlib.suppress(Exception):
                await backend.close()
    finally:
        if temp_dir is not None:
            await asyncio.to_thread(shutil.rmtree, temp_dir, ignore_errors=True)


async def _finish(task: asyncio.Task[Any]) -> None:
    """Wait for a stopping run; if we are cancelled meanwhile, cancel it and still wait."""
    try:
        await asyncio.wait({task})
    except asyncio.CancelledError:
        task.cancel()
        await asyncio.wait({task})
        raise
    finally:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved here; the normal path has raised it already
