"""Recording outcomes: what each fetch (or refusal to fetch) means for its row and host.

A fetched page becomes a result, or a retry; its links become requests to admit; an
unreachable host is paused, then abandoned; autothrottle moves the host's delay. All of
it is recorded into the batch the crawler's flusher writes to the store next. Nothing
here awaits: ``Recorder.record`` runs once per page, on the workers' hot path.

The recorder also keeps the lifecycle of the rows this run holds: each row leased to
it (``leased``) is settled exactly once, by a result, a retry or a release, each a
step of ``core.lifecycle``; settling a row twice, or one it does not hold, raises
``IllegalTransition``.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterable
from typing import Protocol

from shoal.core.config import CrawlConfig
from shoal.core.errors import IllegalTransition
from shoal.core.hosts import AutoThrottle, HostHealth, HostVerdict
from shoal.core.kinds import RETRYABLE_KINDS, ErrorKind
from shoal.core.lifecycle import State, Step, transition
from shoal.core.links import PageLinks
from shoal.core.model import Completion, FetchResult, NewRequest, Request, RetryUpdate
from shoal.core.retry import decide_retry
from shoal.core.revisit import change_of
from shoal.core.robots import RobotsRules
from shoal.engine.clock import REAL_CLOCK, Clock
from shoal.engine.fetch.fetcher import Attempt
from shoal.engine.frontier.dispatch import Dispatcher
from shoal.engine.frontier.robots import RobotsFailure
from shoal.engine.frontier.stats import LiveStats

__all__ = ["Processor", "Recorder"]

log = logging.getLogger("shoal.engine.frontier.recorder")


class Processor(Protocol):
    """Turns a fetched page into requests to admit (link following); counts what it turns
    away in ``rejected`` by reason."""

    def __call__(
        self,
        request: Request,
        result: FetchResult,
        body: bytes | None,
        rejected: Counter[str],
        page: PageLinks | None = None,
    ) -> list[NewRequest]: ...


class Recorder:
    """Records outcomes into ``buffer``, the batch not yet written, and counts them in
    ``stats``. Retries, robots.txt and host health act on the run's ``dispatch``."""

    __slots__ = (
        "_autothrottle",
        "_clock",
        "_held",
        "_host_pause",
        "_leased_at",
        "_processor",
        "_rng",
        "_sitemaps_from_robots",
        "_sitemaps_sought",
        "buffer",
        "config",
        "dispatch",
        "health",
        "rejected",
        "stats",
    )

    def __init__(
        self,
        config: CrawlConfig,
        stats: LiveStats,
        dispatch: Dispatcher,
        *,
        processor: Processor | None,
        autothrottle: AutoThrottle | None,
        sitemaps_from_robots: bool,
        sitemaps_sought: Iterable[str] = (),
        host_pause: float,
        seed: int | None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.config = config
        self._clock = clock
        self.stats = stats
        self._processor = processor
        self._autothrottle = autothrottle
        self._sitemaps_from_robots = sitemaps_from_robots
        # Sitemaps shoal went looking for (the seeds' /sitemap.xml, robots.txt's Sitemap:
        # lines): one that is not there is no page of the site, and no failure.
        self._sitemaps_sought = set(sitemaps_sought)
        self._host_pause = host_pause
        self._rng = random.Random(seed)
        self.health = HostHealth()
        self.rejected: Counter[str] = Counter()  # the processor's rejections, by reason
        self.buffer = Completion()
        self.dispatch = dispatch
        self._held: dict[int, State] = {}  # rows leased to this run, not settled yet
        self._leased_at: dict[int, float] = {}  # when each was leased (wall clock)

    @property
    def held(self) -> int:
        """Rows leased to this run and not settled yet."""
        return len(self._held)

    def leased(self, requests: list[Request], at: float = float("inf")) -> None:
        """``requests`` were leased to this run at ``at`` (wall clock; the lease call's
        now): each is settled once, later. A row this run holds already had its lease
        expire and taken over again."""
        held, leased_at = self._held, self._leased_at
        for request in requests:
            leased_at[request.id] = at
            current = held.get(request.id)
            if current is None:
                held[request.id] = transition(State.PENDING, Step.LEASE)
            else:
                held[request.id] = transition(current, Step.TAKE_OVER)

    def _settle(self, request: Request, step: Step) -> None:
        current = self._held.pop(request.id, None)
        self._leased_at.pop(request.id, None)
        if current is None:
            raise IllegalTransition(
                f"{step.value} of request {request.id}, which this run does not hold"
            )
        transition(current, step, attempts=request.attempts)

    def leased_at(self, request: Request) -> float:
        """When the row of ``request`` was leased to this run (wall clock)."""
        return self._leased_at.get(request.id, float("-inf"))

    def release(self, request: Request) -> None:
        """Give ``request``'s row back unfinished (shutdown, cancellation, a lease that
        lapsed): it is fetched again later, by this run or another."""
        self._settle(request, Step.RELEASE)
        self.buffer.released.append(request.id)

    def pending(self) -> bool:
        """Whether anything recorded is still to be written."""
        return bool(len(self.buffer) or self.rejected)

    def take(self) -> Completion:
        """Everything recorded so far, as one batch to write; recording goes on afresh."""
        batch, self.buffer = self.buffer, Completion()
        rejected = self.rejected
        if rejected:
            batch.counters = dict(rejected)
            self.stats.rejected.update(rejected)
            rejected.clear()
        return batch

    def record_apart(self, request: Request, attempt: Attempt) -> Completion:
        """``record`` into a batch of its own, for a caller that writes it at once."""
        outcome, shared = Completion(), self.buffer
        self.buffer = outcome
        try:
            self.record(request, attempt)
        finally:
            self.buffer = shared
        return outcome

    def put_back(self, outcome: Completion) -> None:
        """An outcome recorded apart whose writing may have failed: the next batch has it."""
        buffer = self.buffer
        buffer.results.extend(outcome.results)
        buffer.retries.extend(outcome.retries)
        buffer.discovered.extend(outcome.discovered)

    def record(self, request: Request, attempt: Attempt) -> None:
        result = attempt.result
        status = result.status
        stats = self.stats
        policy = self.config.retry
        health = self.health
        if status is None or self._autothrottle is not None or health.failing(request.host):
            self._adapt_host(request.host, result)
        elif status is not None:
            health.reached(request.host)
        if (
            (status is None and result.error_kind in RETRYABLE_KINDS)
            or (status is not None and status in policy.retry_statuses)
        ) and not (status is None and health.abandoned(request.host)):
            now = self._clock.time()
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
                self._settle(request, Step.RETRY)
                self.buffer.retries.append(
                    RetryUpdate(
                        request_id=request.id,
                        attempts=result.attempts,
                        next_at=now + delay,
                        error_kind=result.error_kind,
                        error=result.error if status is None else f"HTTP {status}",
                    )
                )
                stats.retries += 1
                if attempt.retry_after is not None:
                    self.dispatch.pause_host(request.host, self._clock.monotonic() + delay)
                return
        if status is not None and status >= 400 and request.url in self._sitemaps_sought:
            if request.parent_url is None:
                result.error_kind = ErrorKind.SITEMAP_MISSING
                result.error = f"no sitemap here (HTTP {status})"
                result.status, status = None, None
        self._settle(request, Step.FAIL if status is None else Step.COMPLETE)
        body, page, processor = attempt.body, attempt.links, self._processor
        if processor is not None and status is not None and (body is not None or page is not None):
            discovered = processor(request, result, body, self.rejected, page)
            if discovered:
                self.buffer.discovered.extend(discovered)
        revisit = request.revisit
        if revisit is not None:
            change = result.change = change_of(
                revisit, status=status, error_kind=result.error_kind, body_hash=result.body_hash
            )
            stats.changes[change] += 1
            if change == "unchanged":
                body = None  # the result keeps the body it has
        if self.config.save_bodies and result.error_kind is None:
            result.body = body
        self.buffer.results.append(result)
        if status is None:
            stats.failed += 1
            stats.by_error_kind[result.error_kind or "unknown"] += 1
        else:
            stats.done += 1
            stats.by_status[status] += 1
            stats.bytes += result.bytes
            if result.error_kind is not None:
                stats.by_error_kind[result.error_kind] += 1

    def record_failure(self, request: Request, kind: ErrorKind, message: str) -> None:
        """A final outcome reached without fetching (robots, abandoned host)."""
        self._settle(request, Step.FAIL)
        result = FetchResult(
            request_id=request.id,
            url=request.url,
            error_kind=kind,
            error=message,
            attempts=request.attempts,
            fetched_at=self._clock.time(),
            depth=request.depth,
            parent_url=request.parent_url,
            method=request.method,
        )
        if request.revisit is not None:
            result.change = change_of(request.revisit, status=None, error_kind=kind, body_hash=None)
            self.stats.changes[result.change] += 1
        self.buffer.results.append(result)
        self.stats.failed += 1
        self.stats.by_error_kind[kind] += 1

    def record_abandoned(self, request: Request) -> None:
        """``request``'s host was given up: recorded with the host's error kind."""
        kind, message = self.health.abandoned_kind(request.host)
        self.record_failure(request, ErrorKind(kind), message)

    def robots_unreachable(self, request: Request, failure: RobotsFailure) -> None:
        """The host's robots.txt got no response: a failed attempt of ``request`` with that
        error, counted in the host's health. It waits for the next try at robots.txt
        while its retries last, and the gate has not given up on the host."""
        host = request.host
        verdict = self.health.record(host, failure.error_kind, failure.error)
        if verdict is HostVerdict.ABANDON:
            log.warning("%s: %s", host, self.health.abandoned_kind(host)[1])
        if self.health.abandoned(host):
            self.record_abandoned(request)
            return
        message = f"robots.txt unreachable: {failure.error}"
        if failure.final or request.attempts >= self.config.retry.retries:
            self.record_failure(request, ErrorKind(failure.error_kind), message)
            return
        self._settle(request, Step.RETRY)
        self.buffer.retries.append(
            RetryUpdate(
                request_id=request.id,
                attempts=request.attempts + 1,
                next_at=failure.retry_at,
                error_kind=failure.error_kind,
                error=message,
            )
        )
        self.stats.retries += 1

    def refuse(self, request: Request, rules: RobotsRules) -> None:
        """robots.txt says no. If it could not be read (5xx, unreachable) the request waits
        for the next try at robots.txt, a bounded number of times."""
        if rules.source == "disallow_all" and (rules.status is None or rules.status >= 500):
            if request.attempts < self.config.retry.retries:
                self._settle(request, Step.RETRY)
                self.buffer.retries.append(
                    RetryUpdate(
                        request_id=request.id,
                        attempts=request.attempts + 1,
                        next_at=max(rules.expires_at, self._clock.time() + 1.0),
                        error_kind=ErrorKind.ROBOTS_DISALLOWED,
                        error="robots.txt unavailable; waiting to ask again",
                    )
                )
                self.stats.retries += 1
                return
            self.record_failure(
                request, ErrorKind.ROBOTS_DISALLOWED, "robots.txt unavailable (5xx or unreachable)"
            )
            return
        self.record_failure(request, ErrorKind.ROBOTS_DISALLOWED, "disallowed by robots.txt")

    def on_robots(self, host: str, rules: RobotsRules) -> None:
        """A host's robots.txt was read: its Crawl-delay slows the host, its sitemaps are
        followed when asked."""
        self.health.reached(host)
        dispatch = self.dispatch
        crawl_delay = rules.crawl_delay()
        if crawl_delay is not None:
            wanted = max(self.config.politeness.delay, crawl_delay)
            if wanted > dispatch.host_delay(host):
                dispatch.set_host_delay(host, wanted)
        if self._sitemaps_from_robots and self._processor is not None:
            for url in rules.sitemaps():
                self._sitemaps_sought.add(url)
                self.buffer.discovered.append(NewRequest.for_url(url))

    def _adapt_host(self, host: str, result: FetchResult) -> None:
        dispatch = self.dispatch
        verdict = self.health.record(host, result.error_kind, result.error)
        if verdict is HostVerdict.PAUSE:
            pause = self._host_pause
            log.info(
                "%s unreachable %d times in a row: pausing it %.0fs",
                host,
                self.health.pause_after,
                pause,
            )
            dispatch.pause_host(host, self._clock.monotonic() + pause)
        elif verdict is HostVerdict.ABANDON:
            log.warning("%s: %s", host, self.health.abandoned_kind(host)[1])
        throttle = self._autothrottle
        if throttle is not None:
            latency = None if result.ttfb_ms is None else result.ttfb_ms / 1000.0
            floor = self.config.politeness.delay
            delay = throttle.next_delay(
                dispatch.host_delay(host), latency=latency, status=result.status, min_delay=floor
            )
            dispatch.set_host_delay(host, delay)
