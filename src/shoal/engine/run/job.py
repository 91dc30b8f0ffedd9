"""The JobRun: one job run — lease from the store, fetch politely, record in batches.

::

    store ──lease──▶ feeder ──▶ Dispatcher(HostScheduler) ──▶ N workers ──▶ buffer
      ▲                                                                       │
      └──────────────── flusher: complete(results, retries, links) ◀──────────┘

Every task lives in one TaskGroup. ``stop()`` is the graceful path: no new
leases, queued rows released, in-flight fetches get ``shutdown_grace``
seconds, then everything unfinished is released and the buffer flushed.
A kill at any moment leaves only leased rows behind, which the next run
takes back (dead pid) or any worker takes once the lease expires.

This module is the run itself: its tasks and how they meet. Leasing and writing
batches are ``run.feeder``'s; what an outcome means (results, retries, links,
host health) is recorded by ``frontier.recorder``; the heartbeat, taking back
dead workers' rows and the careful fetch of rows a dead process held are in
``fleet.crashes``; retrying an unavailable store is in ``fleet.patience``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

from shoal.core.config import CrawlConfig
from shoal.core.errors import ConfigError
from shoal.core.hosts import AutoThrottle
from shoal.core.model import FetchResult, JobInfo, Request
from shoal.core.ports import Store
from shoal.core.ratelimit import TokenBucket
from shoal.core.robots import RobotsPolicy
from shoal.core.schedule import HostScheduler
from shoal.core.urls import canonical_fingerprint
from shoal.engine.clock import REAL_CLOCK, Clock
from shoal.engine.fetch.fetcher import make_session
from shoal.engine.fetch.pool import AUTO_START_ROWS, FetchPool, auto_processes
from shoal.engine.fetch.transport import Transport, open_transport
from shoal.engine.fleet.crashes import CRASH_LIMIT, CrashGuard, heartbeat, reclaim_dead_workers
from shoal.engine.fleet.leases import LeaseClock
from shoal.engine.fleet.patience import STORE_PATIENCE, complete_patiently, patiently
from shoal.engine.frontier.dispatch import Dispatcher
from shoal.engine.frontier.recorder import Processor, Recorder
from shoal.engine.frontier.robots import RobotsFailure, RobotsGate
from shoal.engine.frontier.stats import LiveStats, StatsSnapshot
from shoal.engine.pages.fields import FieldExtractor
from shoal.engine.pages.links import LinkProcessor
from shoal.engine.resources import raise_nofile_limit
from shoal.engine.run.feeder import Feeder, ResultListener

__all__ = [
    "CRASH_LIMIT",
    "STORE_PATIENCE",
    "Admission",
    "JobRun",
    "Processor",
    "ResultListener",
    "RunOutcome",
]

Admission = Callable[["JobRun"], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class RunOutcome:
    completed: bool  # the job has no open rows left
    interrupted: bool  # stop() was called before completion
    stats: StatsSnapshot
    # Requests still being fetched when a graceful stop's grace ran out: released
    # unfinished, so the next run fetches them.
    cut_off: int = 0


class JobRun:
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
        sitemaps_sought: Sequence[str] = (),
        strict_depth: bool = False,
        host_pause: float = 30.0,
        lease_ttl: float = 60.0,
        shutdown_grace: float = 10.0,
        flush_interval: float = 0.1,
        batch_size: int = 1000,
        seed: int | None = None,
        before_fetch: Callable[[Request], Request] | None = None,
        after_fetch: Callable[[FetchResult], None] | None = None,
        owner: str | None = None,
        clock: Clock = REAL_CLOCK,
        block_private: bool = False,
    ) -> None:
        if block_private:
            # The address check is in the aiohttp session's connector of this process.
            if config.http == "auto":
                config = dataclasses.replace(config, http="aiohttp")
            if config.limits.processes is None:
                limits = dataclasses.replace(config.limits, processes=0)
                config = dataclasses.replace(config, limits=limits)
            if config.limits.processes != 0 or config.http != "aiohttp":
                raise ConfigError(
                    "a job that connects only to public addresses fetches in this process "
                    "with aiohttp: leave out --processes and --http"
                )
        self._block_private = block_private
        self.store = store
        self.job = job
        self.config = config
        self.owner = owner or uuid.uuid4().hex
        self.stats = LiveStats()
        self._clock = clock
        scheduler: HostScheduler[Request] = HostScheduler(
            per_host=config.politeness.per_host, delay=config.politeness.delay
        )
        self._dispatch = Dispatcher(
            scheduler, low_water=max(config.limits.concurrency, 256), clock=clock
        )
        self._recorder = Recorder(
            config,
            self.stats,
            self._dispatch,
            processor=processor,
            autothrottle=autothrottle,
            sitemaps_from_robots=sitemaps_from_robots,
            sitemaps_sought=sitemaps_sought,
            host_pause=host_pause,
            seed=seed,
            clock=clock,
        )
        self._feeder = Feeder(
            store,
            job.id,
            self.owner,
            self._dispatch,
            self._recorder,
            self.stats,
            stopping=lambda: self._stopping,
            on_grew=self._job_grew,
            listeners=list(listeners),
            window=max(4 * config.limits.concurrency, 1000),
            batch_size=batch_size,
            max_buffer=max(20 * batch_size, 4 * config.limits.concurrency),
            flush_interval=flush_interval,
            lease_ttl=lease_ttl,
            gap=config.politeness.delay,
            strict_depth=strict_depth,
        )
        # A crawl's link processor: it counts redirect chains, read back from the store
        # when they were followed where it did not see them.
        self._links = processor if isinstance(processor, LinkProcessor) else None
        self._robots_policy = robots
        self._robots: RobotsGate | None = None
        self._lease_ttl = lease_ttl
        self._leases = LeaseClock(lease_ttl)
        self._grace = shutdown_grace
        # Per-request changes (headers, auth) applied to what is sent, never stored.
        self._before_fetch = before_fetch
        # Sees each outcome as it arrives, before it is recorded (a cookie jar).
        self._after_fetch = after_fetch
        # --rate: request starts over all hosts, on top of the per-host politeness.
        rate = config.limits.rate
        self._bucket = TokenBucket(rate) if rate is not None else None
        # The job's extraction rules, applied off the loop before a page is recorded.
        self._extract = FieldExtractor(config.extract) if config.extract is not None else None
        self._pool: FetchPool | None = None
        # A link processor's page reading can run in the fetch processes.
        self._link_settings = processor.settings if isinstance(processor, LinkProcessor) else None
        self._stopping = False
        self._crash_guard: CrashGuard | None = None
        self._cut_off = 0

    # -- public -----------------------------------------------------------

    def stop(self) -> None:
        """Begin a graceful shutdown; ``run()`` returns soon after."""
        if self._stopping:
            return
        self._stopping = True
        if self._dispatch is not None:
            self._dispatch.low.set()

    @property
    def shutdown_grace(self) -> float:
        """Seconds a graceful stop gives the requests in flight."""
        return self._grace

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
        if self._robots is not None:
            self.stats.robots_waiting = self._robots.waiting()
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
            await reclaim_dead_workers(store, job.id, self.owner, lease_ttl=self._lease_ttl)
            counts = await store.counts(job.id)
            self.stats.total = counts.total
            self.stats.finished_before = counts.finished
            dispatch = self._dispatch
            self._crash_guard = CrashGuard(
                store,
                job.id,
                self.owner,
                dispatch,
                self._recorder,
                fetch_and_write=self.fetch_and_write,
            )
            async with (
                make_session(config, block_private=self._block_private) as session,
                open_transport(config, session=session) as transport,
                self._fetch_pool(transport),
            ):
                if self._robots_policy is not None:
                    on_rules = self._recorder.on_robots
                    self._robots = RobotsGate(
                        store, job.id, session, self._robots_policy, on_rules=on_rules
                    )
                async with asyncio.TaskGroup() as tg:
                    workers = [
                        tg.create_task(self._worker(), name=f"shoal-worker-{i}")
                        for i in range(config.limits.concurrency)
                    ]
                    flusher = tg.create_task(self._feeder.flush(), name="shoal-flusher")
                    beating = tg.create_task(
                        heartbeat(store, job.id, self.owner, leases=self._leases),
                        name="shoal-heartbeat",
                    )
                    if admission is not None:
                        self._feeder.admitting = True
                        tg.create_task(self._admit(admission), name="shoal-admission")
                    completed = await self._supervise(workers, flusher)
                    beating.cancel()
        finally:
            if self._extract is not None:
                self._extract.close()
            with contextlib.suppress(Exception):
                # Everything was finished or released by now: this hands the hosts this
                # worker owned to the job's other workers at once, not when ownership expires.
                await store.release_leases(job.id, self.owner, now=time.time())
                await store.unregister_worker(job.id, self.owner)
        return RunOutcome(
            completed=completed,
            interrupted=self._stopping and not completed,
            stats=self.snapshot(),
            cut_off=self._cut_off,
        )

    @property
    def fetch_pool(self) -> FetchPool | None:
        """Where this run's requests are fetched (None before ``run``; closed after)."""
        return self._pool

    @contextlib.asynccontextmanager
    async def _fetch_pool(self, transport: Transport) -> AsyncIterator[FetchPool]:
        """Fetching for this run: here, and in child processes once they start (before the
        first fetch when their number was given; once the job has ``AUTO_START_ROWS`` rows
        to do, without waiting for them, when not)."""
        wanted = self.config.limits.processes
        pool = FetchPool(
            transport,
            self.config,
            auto_processes() if wanted is None else wanted,
            links=self._link_settings,
        )
        self._pool = pool
        async with pool.opened():
            if wanted:
                await pool.start()
            else:
                self._job_grew()
            yield pool

    # -- tasks ------------------------------------------------------------

    async def _supervise(
        self, workers: list[asyncio.Task[None]], flusher: asyncio.Task[None]
    ) -> bool:
        assert self._dispatch is not None
        completed = False
        try:
            completed = await self._feeder.feed()
        finally:
            released = self._dispatch.close()
            for request in released:
                self._recorder.release(request)
            if workers:
                _, unfinished = await asyncio.wait(
                    workers, timeout=self._grace if self._stopping else None
                )
                if unfinished:
                    self._cut_off = self.stats.in_flight
                for task in unfinished:
                    task.cancel()
                if unfinished:
                    await asyncio.wait(unfinished)
            # A request handed to a worker cancelled before it started came back queued.
            for request in self._dispatch.close():
                self._recorder.release(request)
            self._feeder.finish()
            await flusher
        return completed

    async def _admit(self, admission: Admission) -> None:
        try:
            await admission(self)
        finally:
            self._feeder.admitting = False
            if self._dispatch is not None:
                self._dispatch.low.set()

    async def _worker(self) -> None:
        dispatch, guard, pool = self._dispatch, self._crash_guard, self._pool
        assert dispatch is not None and guard is not None and pool is not None
        acquire, release, fetch = dispatch.acquire, dispatch.release, pool.fetch
        acquire_nowait, host_delay = dispatch.acquire_nowait, dispatch.host_delay
        recorder = self._recorder
        stats, record = self.stats, recorder.record
        gate, health = self._robots, recorder.health
        extract, before_fetch = self._extract, self._before_fetch
        after_fetch, bucket, clock = self._after_fetch, self._bucket, self._clock
        chains, feeder = self._links, self._feeder
        batch_size, max_buffer = feeder.batch_size, feeder.max_buffer
        holds, leased_at, wall = self._leases.holds, recorder.leased_at, time.time
        while True:
            request = acquire_nowait()
            if request is None:
                request = await acquire()
                if request is None:
                    return
            if health.abandoned(request.host):
                release(request)
                recorder.record_abandoned(request)
                continue
            if gate is not None:
                rules = gate.cached(request)
                if rules is None:
                    failure = gate.failure(request)
                    if failure is not None:
                        release(request)
                        recorder.robots_unreachable(request, failure)
                        continue
                    await self._load_robots(gate, request)
                    continue
                if not rules.allowed(request.url):
                    release(request)
                    recorder.refuse(request, rules)
                    continue
            if request.suspect:
                await guard.fetch_carefully(request)
                continue
            if not holds(leased_at(request), wall()):
                # Its lease may have run out (this process stalled, or the store was away):
                # another worker may hold the row now. Given back, not sent.
                release(request)
                recorder.release(request)
                continue
            stats.in_flight += 1
            try:
                if bucket is not None:
                    wait = bucket.reserve(clock.monotonic())
                    if wait > 0:
                        await clock.sleep(wait)  # holding the host slot: spacing only grows
                attempt = await fetch(
                    request if before_fetch is None else before_fetch(request),
                    gap=host_delay(request.host),
                )
            except asyncio.CancelledError:
                recorder.release(request)
                raise
            finally:
                stats.in_flight -= 1
                release(request)
            if attempt.proxy_taken_out:
                stats.proxies_taken_out += 1
            if chains is not None and chains.chain_unknown(request, attempt.result):
                await self._recall_chain(chains, request)
            if after_fetch is not None:
                after_fetch(attempt.result)
            if extract is not None and attempt.body is not None and not attempt.fields_done:
                try:
                    await extract(attempt.result, attempt.body)
                except asyncio.CancelledError:
                    recorder.release(request)
                    raise
            record(request, attempt)
            if len(recorder.buffer.results) >= batch_size:
                feeder.wanted.set()
                if len(recorder.buffer) >= max_buffer:
                    await feeder.written()

    async def fetch_and_write(self, request: Request) -> None:
        """Fetch ``request`` in the host slot it holds and write its outcome to the store
        before this returns: how ``CrashGuard`` fetches a suspect row, once it is marked."""
        dispatch, recorder, pool = self._dispatch, self._recorder, self._pool
        assert dispatch is not None and pool is not None
        # The host's spacing counts from this start, not from when the slot was taken.
        dispatch.pause_host(
            request.host, self._clock.monotonic() + dispatch.host_delay(request.host)
        )
        with self._in_flight(request):
            before_fetch = self._before_fetch
            if self._bucket is not None:
                wait = self._bucket.reserve(self._clock.monotonic())
                if wait > 0:
                    await self._clock.sleep(wait)
            attempt = await pool.fetch(
                request if before_fetch is None else before_fetch(request),
                gap=dispatch.host_delay(request.host),
            )
        if self._links is not None and self._links.chain_unknown(request, attempt.result):
            await self._recall_chain(self._links, request)
        if self._after_fetch is not None:
            self._after_fetch(attempt.result)
        if self._extract is not None and attempt.body is not None and not attempt.fields_done:
            try:
                await self._extract(attempt.result, attempt.body)
            except asyncio.CancelledError:
                recorder.release(request)
                raise
        # Recorded into a batch of its own, written now rather than by the flusher: the
        # row must be finished in the store before another is marked.
        outcome = recorder.record_apart(request, attempt)
        try:
            admitted = await complete_patiently(self.store, self.job.id, self.owner, outcome)
        except asyncio.CancelledError:
            # Perhaps written, perhaps not: the flusher writes it (again: the first
            # result wins, a retry of a row no longer held is ignored).
            recorder.put_back(outcome)
            raise
        self._feeder.landed(outcome.results, admitted)

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
            self._recorder.release(request)
            raise
        finally:
            self.stats.in_flight -= 1
            dispatch.release(request)

    async def _recall_chain(self, links: LinkProcessor, request: Request) -> None:
        """Read the redirect chain that led to ``request`` back from the store: the row of
        its parent, written in the same transaction that admitted it."""
        assert request.parent_url is not None
        fingerprint = canonical_fingerprint(request.parent_url)
        found = await patiently(lambda: self.store.find_requests(self.job.id, [fingerprint]))
        parent = found.get(fingerprint)
        links.recall_chain(request.url, parent.result if parent is not None else None)

    async def _load_robots(self, gate: RobotsGate, request: Request) -> None:
        """Fetch the host's robots.txt in this request's slot, then queue the request again,
        so that its own start keeps the host's spacing after the robots.txt request."""
        dispatch, pool = self._dispatch, self._pool
        assert dispatch is not None and pool is not None
        with self._in_flight(request):
            rules = await pool.send_aside(
                request.host,
                dispatch.host_delay(request.host),
                lambda: gate.load(request),
                marks_send=gate.marks_send,
            )
        if isinstance(rules, RobotsFailure):
            self._recorder.robots_unreachable(request, rules)
        elif dispatch.closed:
            self._recorder.release(request)
        else:
            dispatch.requeue(request)
