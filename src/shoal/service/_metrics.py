"""``GET /metrics``: Prometheus metrics of one service, in a registry of its own."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shoal.core.model import Completion, FetchResult, NewRequest
from shoal.core.ports import Store
from shoal.engine.frontier.stats import StatsSnapshot

__all__ = ["ServiceMetrics", "TimedStore"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _LiveGauges(Collector):
    """Gauges read at scrape time: what runs now."""

    def __init__(
        self,
        snapshots: Callable[[], dict[str, StatsSnapshot]],
        states: Callable[[], dict[str, str]],
        clients: Callable[[], int],
    ) -> None:
        self._snapshots = snapshots
        self._states = states
        self._clients = clients

    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_flight = GaugeMetricFamily(
            "shoal_requests_in_flight", "Requests being fetched now", labels=["job"]
        )
        queued = GaugeMetricFamily(
            "shoal_frontier_queued", "Leased rows waiting for their host", labels=["job"]
        )
        for job, snapshot in self._snapshots().items():
            in_flight.add_metric([job], snapshot.in_flight)
            queued.add_metric([job], snapshot.queued)
        jobs = GaugeMetricFamily(
            "shoal_jobs", "Jobs this service knows, by state", labels=["state"]
        )
        counted: dict[str, int] = {}
        for state in self._states().values():
            counted[state] = counted.get(state, 0) + 1
        for state, n in sorted(counted.items()):
            jobs.add_metric([state], n)
        clients = GaugeMetricFamily("shoal_websocket_clients", "WebSocket clients connected")
        clients.add_metric([], self._clients())
        yield from (in_flight, queued, jobs, clients)


class ServiceMetrics:
    """Counters fed with each committed batch of results, and the live gauges."""

    def __init__(
        self,
        snapshots: Callable[[], dict[str, StatsSnapshot]],
        states: Callable[[], dict[str, str]],
        clients: Callable[[], int],
    ) -> None:
        self.registry = CollectorRegistry()
        self.pages = Counter(
            "shoal_pages",
            "Results recorded, by job and status class (or 'error')",
            ["job", "status_class"],
            registry=self.registry,
        )
        self.errors = Counter(
            "shoal_errors",
            "Results with an error, by kind",
            ["job", "kind"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "shoal_fetch_seconds",
            "Time to fetch a page, from request start to the end of its body",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.store_writes = Histogram(
            "shoal_store_write_seconds",
            "Time to commit a batch of results (complete) or admit requests (add_requests)",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_LiveGauges(snapshots, states, clients))

    def record(self, job: str, results: Sequence[FetchResult]) -> None:
        for result in results:
            if result.status is not None:
                self.pages.labels(job, f"{result.status // 100}xx").inc()
            else:
                self.pages.labels(job, "error").inc()
            if result.error_kind is not None:
                self.errors.labels(job, result.error_kind).inc()
            if result.elapsed_ms is not None:
                self.latency.observe(result.elapsed_ms / 1000)


class TimedStore:
    """A store whose writes on the hot path are timed into ``shoal_store_write_seconds``;
    everything else goes straight to the store it wraps."""

    def __init__(self, store: Store, histogram: Histogram) -> None:
        self._store = store
        self._complete = histogram.labels("complete")
        self._add = histogram.labels("add_requests")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def complete(self, job_id: int, owner: str, batch: Completion, *, now: float) -> int:
        started = time.perf_counter()
        try:
            return await self._store.complete(job_id, owner, batch, now=now)
        finally:
            self._complete.observe(time.perf_counter() - started)

    async def add_requests(self, job_id: int, requests: Sequence[NewRequest], *, now: float) -> int:
        started = time.perf_counter()
        try:
            return await self._store.add_requests(job_id, requests, now=now)
        finally:
            self._add.observe(time.perf_counter() - started)
