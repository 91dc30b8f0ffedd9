"""The Crawler: one job run — lease from the store, fetch politely, record in batches.

::

    store ──lease──▶ feeder ──▶ Dispatcher(HostScheduler) ──▶ N workers ──▶ buffer
      ▲                                                                       │
      └──────────────── flusher: complete(results, retries, links) ◀──────────┘

Every task lives in one TaskGroup. ``stop()`` is the graceful path: no new
leases, queued rows released, in-flight fetches get ``shutdown_grace``
seconds, then everything unfinished is released and the buffer flushed.
A kill at any moment leaves only leased rows behind, which the next run
takes back (dead pid) or any worker takes once the lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import aiohttp

from shoal.core.config import CrawlConfig
from shoal.core.errors import StoreUnavailable
from shoal.core.hosts import AutoThrottle, HostHealth, HostVerdict
from shoal.core.kinds import RETRYABLE_KINDS, ErrorKind
from shoal.core.model import Completion, FetchResult, JobInfo, NewRequest, Request, RetryUpdate
from shoal.core.retry import decide_retry
from shoal.core.robots import RobotsPolicy, RobotsRules
from shoal.core.schedule import HostScheduler
from shoal.engine.dispatch import Dispatcher
from shoal.engine.fetcher import Attempt, Fetcher, make_session
from shoal.engine.fetchpool import AUTO_START_ROWS, FetchPool, auto_processes
from shoal.engine.processor import FieldExtractor
from shoal.engine.resources import pid_alive, raise_nofile_limit
from shoal.engine.robots import RobotsGate
from shoal.engine.stats import LiveStats, StatsSnapshot
from shoal.store.base import Store

__all__ = ["Admission", "Crawler", "Processor", "ResultListener", "RunOutcome"]

log = logging.getLogger("shoal.engine.crawler")

T = TypeVar("T")

STORE_PATIENCE = 300.0
"""Seconds a run keeps retrying a store that is unavailable before it gives up."""

CRASH_LIMIT = 3
"""Deaths of the process fetching a URL (it was marked started and never finished) after
which the URL is taken to be what kills it, and recorded as ``internal_error``."""


class Processor(Protocol):
    """Turns a fetched page into requests to admit (link following); counts what it turns
    away in ``rejected`` by reason."""

    def __call__(
        self, request: Request, result: FetchResult, body: bytes, rejected: Counter[str]
    ) -> list[NewRequest]: ...


ResultListener = Callable[[Sequence[FetchResult]], None]
Admission = Callable[["Crawler"], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class RunOutcome:
    completed: bool  # the job has no open rows left
    interrupted: bool  # stop() was called before completion
    stats: StatsSnapshot


class Crawler:
    """Runs one job on one store until it has no open rows, or until ``stop()``."""

    def __init__(
        self,
        store: Store,
        job: JobInfo,
        config: CrawlConfig,
        *,
        processor: Processor | None = None,
        listeners: Sequence[ResultListener] = (),
        robots: RobotsPolicy | None = None,
        autothrottle: AutoThrottle | None = None,
        sitemaps_from_robots: bool = False,
        strict_depth: bool = False,
        host_pause: float = 30.0,
        lease_ttl: float = 60.0,
        shutdown_grace: float = 10.0,
        flush_interval: float = 0.1,
        batch_size: int = 1000,
        seed: int | None = None,
        before_fetch: Callable[[Request], Request] | None = None,
    ) -> None:
        self.store = store
        self.job = job
        self.config = config
        self.owner = uuid.uuid4().hex
        self.stats = LiveStats()
        self._processor = processor
        self._listeners = list(listeners)
        self._robots_policy = robots
        self._robots: RobotsGate | None = None
        self._autothrottle = autothrottle
        self._sitemaps_from_robots = sitemaps_from_robots
        self._strict_depth = strict_depth
        self._host_pause = host_pause
        self._health = HostHealth()
        self._rejected: Counter[str] = Counter()
        self._lease_ttl = lease_ttl
        self._grace = shutdown_grace
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._rng = random.Random(seed)
        # Per-request changes (headers, auth) applied to what is sent, never stored.
        self._before_fetch = before_fetch
        # The job's extraction rules, applied off the loop before a page is recorded.
        self._extract = FieldExtractor(config.extract) if config.extract is not None else None
        concurrency = config.limits.concurrency
        self._window = max(4 * concurrency, 1000)
        self._pool: FetchPool | None = None
        self._max_buffer = max(20 * batch_size, 4 * concurrency)
        self._buffer = Completion()
        self._stopping = False
        self._admitting = False
        self._done_feeding = False
        self._flush_wanted = asyncio.Event()
        self._flushed = asyncio.Event()
        self._dispatch: Dispatcher | None = None
        # Held from marking a row that was in flight when a process died until its outcome
        # is written, so that if this process dies too, that row alone is blamed.
        self._blame_lock = asyncio.Lock()
        self._deferred: set[int] = set()  # such rows sent to the back of the queue once

    # -- public -----------------------------------------------------------

    def stop(self) -> None:
        """Begin a graceful shutdown; ``run()`` returns soon after."""
        if self._stopping:
            return
        self._stopping = True
        if self._dispatch is not None:
            self._dispatch.low.set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def note_admitted(self, count: int) -> None:
        """An admission running beside ``run()`` added ``count`` new rows: lease them."""
        self.stats.total += count
        self._job_grew()
        if count and self._dispatch is not None:
            self._dispatch.low.set()

    def _job_grew(self) -> None:
        """A job this big (rows this run has still to finish) has its fetch processes
        started, unless their number was set."""
        stats, pool = self.stats, self._pool
        if (
            pool is not None
            and self.config.limits.processes is None
            and stats.total - stats.finished_before >= AUTO_START_ROWS
        ):
            pool.start_soon()

    def snapshot(self) -> StatsSnapshot:
        if self._dispatch is not None:
            self.stats.queued = self._dispatch.queued
        if self._pool is not None:
            self.stats.fetch_processes = self._pool.peak
        return self.stats.snapshot(time.monotonic())

    async def run(self, admission: Admission | None = None) -> RunOutcome:
        """Fetch until the job has no open rows (or ``stop()``).

        ``admission``, if given, runs beside the workers and adds rows (calling
        ``note_admitted``) so fetching starts before a long input is fully read;
        the job is not complete until it returns.
        """
        config = self.config
        raise_nofile_limit(config.limits.concurrency + 512)
        store, job = self.store, self.job
        self.stats.started_at = time.monotonic()
        await store.register_worker(
            job.id, self.owner, pid=os.getpid(), hostname=socket.gethostname(), now=time.time()
        )
        try:
            await self._reclaim_dead_workers()
            counts = await store.counts(job.id)
            self.stats.total = counts.total
            self.stats.finished_before = counts.finished
            scheduler: HostScheduler[Request] = HostScheduler(
                per_host=config.politeness.per_host, delay=config.politeness.delay
            )
            self._dispatch = Dispatcher(scheduler, low_water=max(config.limits.concurrency, 256))
            if self._stopping:
                self._dispatch.low.set()
            async with make_session(config) as session, self._fetch_pool(session) as pool:
                self._fetcher = pool
                if self._robots_policy is not None:
                    self._robots = RobotsGate(
                        store, job.id, session, self._robots_policy, on_rules=self._on_robots
                    )
                async with asyncio.TaskGroup() as tg:
                    workers = [
                        tg.create_task(self._worker(), name=f"shoal-worker-{i}")
                        for i in range(config.limits.concurrency)
                    ]
                    flusher = tg.create_task(self._flusher(), name="shoal-flusher")
                    heartbeat = tg.create_task(self._heartbeat(), name="shoal-heartbeat")
                    if admission is not None:
                        self._admitting = True
                        tg.create_task(self._admit(admission), name="shoal-admission")
                    completed = await self._supervise(workers, flusher)
                    heartbeat.cancel()
        finally:
            if self._extract is not None:
                self._extract.close()
            with contextlib.suppress(Exception):
                # Everything was finished or released by now: this hands the hosts this
                # worker owned to the job's other workers at once, not when ownership expires.
                await store.release_leases(job.id, self.owner, now=time.time())
                await store.unregister_worker(job.id, self.owner)
        return RunOutcome(
            completed=completed, interrupted=self._stopping and not completed, stats=self.snapshot()
        )

    @property
    def fetch_pool(self) -> FetchPool | None:
        """Where this run's requests are fetched (None before ``run``; closed after)."""
        return self._pool

    @contextlib.asynccontextmanager
    async def _fetch_pool(self, session: aiohttp.ClientSession) -> AsyncIterator[FetchPool]:
        """Fetching for this run: here, and in child processes once they start (before the
        first fetch when their number was given; once the job has ``AUTO_START_ROWS`` rows
        to do, without waiting for them, when not)."""
        wanted = self.config.limits.processes
        pool = FetchPool(
            Fetcher(session, self.config),
            self.config,
            auto_processes() if wanted is None else wanted,
        )
        self._pool = pool
        try:
            if wanted:
                await pool.start()
            else:
                self._job_grew()
            yield pool
        finally:
            await pool.close()

    # -- tasks ------------------------------------------------------------

    async def _supervise(
        self, workers: list[asyncio.Task[None]], flusher: asyncio.Task[None]
    ) -> bool:
        assert self._dispatch is not None
        completed = False
        try:
            completed = await self._feed()
        finally:
            released = self._dispatch.close()
            self._buffer.released.extend(r.id for r in released)
            if workers:
                _, unfinished = await asyncio.wait(
                    workers, timeout=self._grace if self._stopping else None
                )
                for task in unfinished:
                    task.cancel()
                if unfinished:
                    await asyncio.wait(unfinished)
            self._done_feeding = True
            self._flush_wanted.set()
            await flusher
        return completed

    async def _admit(self, admission: Admission) -> None:
        try:
            await admission(self)
        finally:
            self._admitting = False
            if self._dispatch is not None:
                self._dispatch.low.set()

    async def _feed(self) -> bool:
        """Keep the dispatcher stocked; return True once the job has no open rows."""
        dispatch = self._dispatch
        assert dispatch is not None
        store, job_id, owner = self.store, self.job.id, self.owner
        wake = dispatch.low
        while not self._stopping:
            wake.clear()
            room = self._window - dispatch.queued - dispatch.in_flight
            if room > 0 and dispatch.queued < self._window // 2:
                # A depth-limited crawl goes level by level (see Store.min_open_depth).
                level = (
                    await self._patiently(lambda: store.min_open_depth(job_id))
                    if self._strict_depth
                    else None
                )
                requests = await self._patiently(
                    lambda room=room, level=level: store.lease(  # type: ignore[misc]
                        job_id,
                        owner,
                        limit=room,
                        now=time.time(),
                        ttl=self._lease_ttl,
                        max_depth=level,
                        gap=self.config.politeness.delay,
                    )
                )
                if requests:
                    dispatch.add(requests)
                    continue
                if dispatch.queued == 0 and dispatch.in_flight == 0:
                    if len(self._buffer) or self._admitting:
                        self._flush_wanted.set()
                        await self._wait(wake, 1.0)
                        continue
                    counts = await self._patiently(lambda: store.counts(job_id))
                    if counts.open == 0:
                        return True
                    due = await self._patiently(lambda: store.next_due(job_id))
                    # Rows due but not leased belong to hosts other workers own: their
                    # handover takes a while, so ask again less eagerly.
                    wait = None if due is None else due - time.time()
                    pause = 1.0 if wait is None else 0.2 if wait <= 0 else min(1.0, max(0.02, wait))
                    await self._wait(wake, pause)
                    continue
                await self._wait(wake, 0.25)
            else:
                await self._wait(wake, 1.0)
        return False

    async def _worker(self) -> None:
        dispatch = self._dispatch
        assert dispatch is not None
        acquire, release, fetch = dispatch.acquire, dispatch.release, self._fetcher.fetch
        acquire_nowait = dispatch.acquire_nowait
        stats, record = self.stats, self._record
        gate, health = self._robots, self._health
        extract, before_fetch = self._extract, self._before_fetch
        while True:
            request = acquire_nowait()
            if request is None:
                request = await acquire()
                if request is None:
                    return
            if gate is not None:
                rules = gate.cached(request)
                if rules is None:
                    await self._load_robots(gate, request)
                    continue
                if not rules.allowed(request.url):
                    release(request)
                    self._refuse(request, rules)
                    continue
            if health.abandoned(request.host):
                release(request)
                self._record_failure(
                    request, ErrorKind.HOST_ABANDONED, "host unreachable: gave up on it"
                )
                continue
            if request.suspect:
                await self._fetch_carefully(request)
                continue
            stats.in_flight += 1
            try:
                attempt = await fetch(request if before_fetch is None else before_fetch(request))
            except asyncio.CancelledError:
                self._buffer.released.append(request.id)
                raise
            finally:
                stats.in_flight -= 1
                release(request)
            if extract is not None and attempt.body is not None:
                try:
                    await extract(attempt.result, attempt.body)
                except asyncio.CancelledError:
                    self._buffer.released.append(request.id)
                    raise
            record(request, attempt)
            if len(self._buffer.results) >= self._batch_size:
                self._flush_wanted.set()
                if len(self._buffer) >= self._max_buffer:
                    self._flushed.clear()
                    await self._flushed.wait()

    async def _fetch_carefully(self, request: Request) -> None:
        """Fetch a row that a process held when it died, so that a URL that kills every
        process fetching it is given up, and one that was merely leased is not.

        The row is marked started in the store before the fetch, and its outcome written
        before this returns: a death in between counts a crash for it (``Store.mark_started``).
        Rows in flight at an earlier death go one at a time, so that a culprit is blamed
        alone; the others may go side by side. Called holding the host's slot; releases it.

        A row in flight at an earlier death first goes to the back of its host's queue, once
        per run: the run does its other work before it risks the row, and a row that was
        merely unlucky is not what is in flight again when this run dies early too (the
        first rows of a window are the ones a quickly dying run always meets).
        """
        dispatch = self._dispatch
        assert dispatch is not None
        if request.crashes > CRASH_LIMIT:
            dispatch.release(request)
            log.warning(
                "%s: its process died %d times fetching it; given up", request.url, request.crashes
            )
            self._record_failure(
                request,
                ErrorKind.INTERNAL_ERROR,
                f"the process fetching this URL died {request.crashes} times while it was "
                "in flight; given up",
            )
            return
        blamed = request.crashes > 0
        if blamed and request.id not in self._deferred:
            self._deferred.add(request.id)
            dispatch.release(request)
            if dispatch.closed:
                self._buffer.released.append(request.id)
            else:
                dispatch.add([request])
            return
        if blamed and self._blame_lock.locked():
            # Wait without the host's slot, then queue the row again: its start keeps the
            # host's spacing after whatever started meanwhile.
            dispatch.release(request)
            try:
                async with self._blame_lock:
                    pass
            except asyncio.CancelledError:
                self._buffer.released.append(request.id)
                raise
            if dispatch.closed:
                self._buffer.released.append(request.id)
            else:
                dispatch.requeue(request)
            return
        store, job_id, owner = self.store, self.job.id, self.owner
        async with self._blame_lock if blamed else contextlib.nullcontext():
            try:
                marked = await self._patiently(
                    lambda: store.mark_started(job_id, owner, [request.id], now=time.time())
                )
            except asyncio.CancelledError:
                dispatch.release(request)
                self._buffer.released.append(request.id)
                raise
            if not marked:
                # The lease expired meanwhile: the row may be another worker's already.
                dispatch.release(request)
                self._buffer.released.append(request.id)
                return
            # The host's spacing counts from this start, not from when the slot was taken.
            loop = asyncio.get_running_loop()
            dispatch.pause_host(request.host, loop.time() + dispatch.host_delay(request.host))
            with self._in_flight(request):
                before_fetch = self._before_fetch
                attempt = await self._fetcher.fetch(
                    request if before_fetch is None else before_fetch(request)
                )
            if self._extract is not None and attempt.body is not None:
                try:
                    await self._extract(attempt.result, attempt.body)
                except asyncio.CancelledError:
                    self._buffer.released.append(request.id)
                    raise
            # Recorded into a batch of its own, written now rather than by the flusher: the
            # row must be finished in the store before another is marked.
            outcome, shared = Completion(), self._buffer
            self._buffer = outcome
            try:
                self._record(request, attempt)
            finally:
                self._buffer = shared
            try:
                admitted = await self._complete_with_retry(store, job_id, owner, outcome)
            except asyncio.CancelledError:
                # Perhaps written, perhaps not: the flusher writes it (again: the first
                # result wins, a retry of a row no longer held is ignored).
                self._buffer.results.extend(outcome.results)
                self._buffer.retries.extend(outcome.retries)
                self._buffer.discovered.extend(outcome.discovered)
                raise
        self.stats.total += admitted
        if outcome.results:
            for listener in self._listeners:
                listener(outcome.results)
        dispatch.low.set()

    @contextlib.contextmanager
    def _in_flight(self, request: Request) -> Iterator[None]:
        """Count ``request`` in flight while its host slot is held, then give the slot back;
        a cancelled request's row is released. (``_worker`` inlines this on its hot path.)"""
        dispatch = self._dispatch
        assert dispatch is not None
        self.stats.in_flight += 1
        try:
            yield
        except asyncio.CancelledError:
            self._buffer.released.append(request.id)
            raise
        finally:
            self.stats.in_flight -= 1
            dispatch.release(request)

    async def _load_robots(self, gate: RobotsGate, request: Request) -> None:
        """Fetch the host's robots.txt in this request's slot, then queue the request again,
        so that its own start keeps the host's spacing after the robots.txt request."""
        dispatch = self._dispatch
        assert dispatch is not None
        with self._in_flight(request):
            await gate.load(request)
        if dispatch.closed:
            self._buffer.released.append(request.id)
        else:
            dispatch.requeue(request)

    def _on_robots(self, host: str, rules: RobotsRules) -> None:
        dispatch = self._dispatch
        crawl_delay = rules.crawl_delay()
        if dispatch is not None and crawl_delay is not None:
            wanted = max(self.config.politeness.delay, crawl_delay)
            if wanted > dispatch.host_delay(host):
                dispatch.set_host_delay(host, wanted)
        if self._sitemaps_from_robots and self._processor is not None:
            for url in rules.sitemaps():
                self._buffer.discovered.append(NewRequest.for_url(url))

    def _refuse(self, request: Request, rules: RobotsRules) -> None:
        """robots.txt says no. If it could not be read (5xx, unreachable) the request waits
        for the next try at robots.txt, a bounded number of times."""
        if rules.source == "disallow_all" and (rules.status is None or rules.status >= 500):
            if request.attempts < self.config.retry.retries:
                self._buffer.retries.append(
                    RetryUpdate(
                        request_id=request.id,
                        attempts=request.attempts + 1,
                        next_at=max(rules.expires_at, time.time() + 1.0),
                        error_kind=ErrorKind.ROBOTS_DISALLOWED,
                        error="robots.txt unavailable; waiting to ask again",
                    )
                )
                self.stats.retries += 1
                return
            self._record_failure(
                request, ErrorKind.ROBOTS_DISALLOWED, "robots.txt unavailable (5xx or unreachable)"
            )
            return
        self._record_failure(request, ErrorKind.ROBOTS_DISALLOWED, "disallowed by robots.txt")

    def _record_failure(self, request: Request, kind: ErrorKind, message: str) -> None:
        """A final outcome reached without fetching (robots, abandoned host)."""
        self._buffer.results.append(
            FetchResult(
                request_id=request.id,
                url=request.url,
                error_kind=kind,
                error=message,
                attempts=request.attempts,
                fetched_at=time.time(),
                depth=request.depth,
                parent_url=request.parent_url,
                method=request.method,
            )
        )
        self.stats.failed += 1
        self.stats.by_error_kind[kind] += 1

    def _record(self, request: Request, attempt: Attempt) -> None:
        result = attempt.result
        status = result.status
        stats = self.stats
        policy = self.config.retry
        if status is None or self._autothrottle is not None or self._health.failing(request.host):
            self._adapt_host(request.host, result)
        if (status is None and result.error_kind in RETRYABLE_KINDS) or (
            status is not None and status in policy.retry_statuses
        ):
            now = time.time()
            delay = decide_retry(
                policy,
                attempts=result.attempts,
                status=status,
                error_kind=result.error_kind,
                retry_after=attempt.retry_after,
                now=now,
                rng=self._rng,
            )
            if delay is not None:
                self._buffer.retries.append(
                    RetryUpdate(
                        request_id=request.id,
                        attempts=result.attempts,
                        next_at=now + delay,
                        error_kind=result.error_kind,
                        error=result.error if status is None else f"HTTP {status}",
                    )
                )
                stats.retries += 1
                if attempt.retry_after is not None and self._dispatch is not None:
                    self._dispatch.pause_host(
                        request.host, asyncio.get_running_loop().time() + delay
                    )
                return
        body = attempt.body
        if body is not None and self._processor is not None and status is not None:
            discovered = self._processor(request, result, body, self._rejected)
            if discovered:
                self._buffer.discovered.extend(discovered)
        if self.config.save_bodies and result.error_kind is None:
            result.body = body
        self._buffer.results.append(result)
        if status is None:
            stats.failed += 1
            stats.by_error_kind[result.error_kind or "unknown"] += 1
        else:
            stats.done += 1
            stats.by_status[status] += 1
            stats.bytes += result.bytes
            if result.error_kind is not None:
                stats.by_error_kind[result.error_kind] += 1

    def _adapt_host(self, host: str, result: FetchResult) -> None:
        dispatch = self._dispatch
        if dispatch is None:
            return
        verdict = self._health.record(host, result.error_kind)
        if verdict is HostVerdict.PAUSE:
            pause = self._host_pause
            log.info(
                "%s unreachable %d times in a row: pausing it %.0fs",
                host,
                self._health.pause_after,
                pause,
            )
            dispatch.pause_host(host, asyncio.get_running_loop().time() + pause)
        elif verdict is HostVerdict.ABANDON:
            log.warning("%s unreachable too many times in a row: giving up on it", host)
        throttle = self._autothrottle
        if throttle is not None:
            latency = None if result.ttfb_ms is None else result.ttfb_ms / 1000.0
            floor = self.config.politeness.delay
            delay = throttle.next_delay(
                dispatch.host_delay(host), latency=latency, status=result.status, min_delay=floor
            )
            dispatch.set_host_delay(host, delay)

    async def _flusher(self) -> None:
        store, job_id, owner = self.store, self.job.id, self.owner
        wanted = self._flush_wanted
        while True:
            if not len(self._buffer) and not self._rejected:
                if self._done_feeding:
                    self._flushed.set()
                    return
                wanted.clear()
                await self._wait(wanted, self._flush_interval)
                if not len(self._buffer) and not self._rejected:
                    continue
            batch, self._buffer = self._buffer, Completion()
            if self._rejected:
                batch.counters = dict(self._rejected)
                self.stats.rejected.update(self._rejected)
                self._rejected.clear()
            admitted = await self._complete_with_retry(store, job_id, owner, batch)
            self.stats.total += admitted
            if admitted:
                self._job_grew()
            self._flushed.set()
            if batch.results:
                for listener in self._listeners:
                    listener(batch.results)
            if self._dispatch is not None:
                self._dispatch.low.set()
            if not self._done_feeding and len(self._buffer) < self._batch_size:
                await self._wait(wanted, self._flush_interval)

    async def _complete_with_retry(
        self, store: Store, job_id: int, owner: str, batch: Completion
    ) -> int:
        admitted = await self._patiently(
            lambda: store.complete(job_id, owner, batch, now=time.time())
        )
        return admitted or 0

    async def _patiently(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, again with backoff while the store is unavailable (a database
        restarting, a network blip), for up to ``STORE_PATIENCE`` seconds in all."""
        delay = 0.25
        waited = 0.0
        while True:
            try:
                return await call()
            except StoreUnavailable as exc:
                if waited >= STORE_PATIENCE:
                    raise
                log.warning("store unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 8.0)

    async def _heartbeat(self) -> None:
        interval = self._lease_ttl / 3
        while True:
            await asyncio.sleep(interval)
            now = time.time()
            with contextlib.suppress(StoreUnavailable):
                await self.store.heartbeat(self.job.id, self.owner, now=now)
                await self.store.renew_leases(self.job.id, self.owner, now=now, ttl=self._lease_ttl)
                # A worker of the job that died since (kill -9 on this machine, or silent for
                # three lease periods anywhere) gives its rows and hosts back now, not at expiry.
                await self._reclaim_dead_workers()

    async def _reclaim_dead_workers(self) -> None:
        """Release leases held by workers that died (pid gone here, or heartbeat stale)."""
        here = socket.gethostname()
        now = time.time()
        for worker in await self.store.list_workers(self.job.id):
            if worker.owner == self.owner:
                continue
            dead_here = worker.hostname == here and not pid_alive(worker.pid)
            stale = now - worker.heartbeat_at > 3 * self._lease_ttl
            if dead_here or stale:
                # Any of its rows may be what killed it: they come back suspect, and those
                # it had marked started count a crash (see _fetch_carefully).
                released = await self.store.release_leases(
                    self.job.id, worker.owner, crashed=True, now=now
                )
                await self.store.unregister_worker(self.job.id, worker.owner)
                if released:
                    log.info("took back %d leased rows from a stopped worker", released)

    @staticmethod
    async def _wait(event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()
