"""Server-side request recording, cheap enough for benchmarks, and its frozen snapshots.

The server appends to a few lists per request and keeps two counters; all
the arithmetic (gaps, counts, maxima over time) happens when someone asks
for :class:`TestWebStats`. Times are ``time.monotonic()`` of the server's
process, which on Linux is one clock for every process on the machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["HostStats", "TrafficRecorder", "RequestRecord", "TestWebStats"]


class RequestRecord(NamedTuple):
    """One request as the server saw it.

    ``start`` is when it arrived (``time.monotonic``): when its handler began, or, for a
    request the server got to late (its thread kept off the CPU), when its bytes reached
    the TCP stack. ``end`` is None while the handler runs; ``status`` is 0 when the handler
    did not produce a response (cancelled, client gone, crashed).
    """

    path: str
    start: float
    end: float | None
    status: int


@dataclass(frozen=True, kw_only=True, slots=True)
class HostStats:
    """What one host served since start or the last reset.

    A request is in flight from the moment its handler starts until it
    returns (for streamed bodies: until the last byte is written). Handlers
    that answer at once never overlap, so to observe a client's concurrency
    give the pages some ``latency_ms`` or use ``/delay/{ms}``.
    ``min_start_gap`` is the smallest time between two consecutive request
    starts (None below two requests, or with ``record=False``).
    """

    host: int
    address: str
    requests: int
    in_flight: int
    max_in_flight: int
    min_start_gap: float | None
    paths: Counter[str]
    log: tuple[RequestRecord, ...]

    def to_json(self, *, log: bool = True) -> dict[str, Any]:
        return {
            "host": self.host,
            "address": self.address,
            "requests": self.requests,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "min_start_gap": self.min_start_gap,
            "paths": dict(self.paths),
            "log": [list(record) for record in self.log] if log else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HostStats:
        return cls(
            host=int(data["host"]),
            address=str(data["address"]),
            requests=int(data["requests"]),
            in_flight=int(data["in_flight"]),
            max_in_flight=int(data["max_in_flight"]),
            min_start_gap=data["min_start_gap"],
            paths=Counter({str(k): int(v) for k, v in data["paths"].items()}),
            log=tuple(RequestRecord(*record) for record in data.get("log") or ()),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class TestWebStats:
    """A snapshot of every host's :class:`HostStats`, host 0 first, plus totals.

    ``max_in_flight`` is the most requests in flight at once across all hosts.
    ``log`` in each host is empty when the server runs with ``record=False``
    or when the snapshot came over HTTP without ``?log=1``.
    """

    __test__ = False  # a name pytest would otherwise try to collect

    hosts: tuple[HostStats, ...]
    requests: int
    in_flight: int
    max_in_flight: int

    def to_json(self, *, log: bool = True) -> dict[str, Any]:
        return {
            "hosts": [host.to_json(log=log) for host in self.hosts],
            "requests": self.requests,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TestWebStats:
        """Rebuild a snapshot from ``GET /_testweb/stats``."""
        return cls(
            hosts=tuple(HostStats.from_json(host) for host in data["hosts"]),
            requests=int(data["requests"]),
            in_flight=int(data["in_flight"]),
            max_in_flight=int(data["max_in_flight"]),
        )


class _HostLog:
    __slots__ = ("count", "ends", "in_flight", "max_in_flight", "paths", "starts", "statuses")

    def __init__(self) -> None:
        self.count = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.paths: list[str] = []
        self.starts: list[float] = []
        self.ends: list[float | None] = []
        self.statuses: list[int] = []


class TrafficRecorder:
    """Per-host request log; ``begin`` and ``end`` are the only per-request costs.

    With ``keep_log`` False only counts and in-flight maxima are kept, for
    benchmarks that send millions of requests.
    """

    __slots__ = ("_addresses", "_generation", "_hosts", "_in_flight", "_max_in_flight", "keep_log")

    def __init__(self, addresses: Sequence[str], *, keep_log: bool = True) -> None:
        self._addresses = list(addresses)
        self.keep_log = keep_log
        self._generation = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._hosts = [_HostLog() for _ in self._addresses]

    def begin(self, host: int, path: str, now: float) -> tuple[int, int]:
        """Note a request start; returns the token :meth:`end` needs."""
        log = self._hosts[host]
        log.in_flight += 1
        if log.in_flight > log.max_in_flight:
            log.max_in_flight = log.in_flight
        self._in_flight += 1
        if self._in_flight > self._max_in_flight:
            self._max_in_flight = self._in_flight
        index = log.count
        log.count += 1
        if self.keep_log:
            log.paths.append(path)
            log.starts.append(now)
            log.ends.append(None)
            log.statuses.append(0)
        return self._generation, index

    def end(self, host: int, token: tuple[int, int], now: float, status: int) -> None:
        """Note a request end; a request that began before a reset only leaves flight."""
        log = self._hosts[host]
        log.in_flight -= 1
        self._in_flight -= 1
        generation, index = token
        if generation == self._generation and self.keep_log:
            log.ends[index] = now
            log.statuses[index] = status

    def reset(self) -> None:
        """Forget every request; requests still in flight keep counting as in flight."""
        self._generation += 1
        for log in self._hosts:
            log.count = 0
            log.max_in_flight = log.in_flight
            log.paths = []
            log.starts = []
            log.ends = []
            log.statuses = []
        self._max_in_flight = self._in_flight

    def snapshot(self) -> TestWebStats:
        hosts = tuple(
            _host_stats(index, address, log)
            for index, (address, log) in enumerate(zip(self._addresses, self._hosts, strict=True))
        )
        return TestWebStats(
            hosts=hosts,
            requests=sum(host.requests for host in hosts),
            in_flight=self._in_flight,
            max_in_flight=self._max_in_flight,
        )


def _host_stats(index: int, address: str, log: _HostLog) -> HostStats:
    starts = sorted(log.starts)
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    return HostStats(
        host=index,
        address=address,
        requests=log.count,
        in_flight=log.in_flight,
        max_in_flight=log.max_in_flight,
        min_start_gap=min(gaps) if gaps else None,
        paths=Counter(log.paths),
        log=tuple(map(RequestRecord, log.paths, log.starts, log.ends, log.statuses)),
    )
