"""Per-host politeness scheduling: which queued request may start now.

A pure state machine over monotonic seconds passed in by the caller. Each
host has a FIFO queue, a count of requests in flight and the earliest time
its next request may start. Hosts that may start now wait in a ready ring
and are served round-robin, one request per turn, so one huge host never
starves the rest; hosts held back only by their delay wait in a heap keyed
by the time they become due.

Invariants (tested): a host never has more than ``per_host`` requests in
flight, and two starts on one host are never closer than its delay.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Generic, Protocol, TypeVar

__all__ = ["HostScheduler", "Schedulable"]


class Schedulable(Protocol):
    @property
    def host(self) -> str: ...


T = TypeVar("T", bound=Schedulable)


class _Host(Generic[T]):
    __slots__ = ("delay", "in_flight", "in_heap", "in_ready", "name", "next_start", "queue")

    def __init__(self, name: str, delay: float) -> None:
        self.name = name
        self.queue: deque[T] = deque()
        self.in_flight = 0
        self.next_start = 0.0
        self.delay = delay
        self.in_ready = False
        self.in_heap = False


class HostScheduler(Generic[T]):
    """Hands out queued requests honouring per-host concurrency and start spacing."""

    def __init__(self, *, per_host: int, delay: float = 0.0) -> None:
        if per_host < 1:
            raise ValueError("per_host must be ≥ 1")
        self._per_host = per_host
        self._delay = delay
        self._delays: dict[str, float] = {}
        self._hosts: dict[str, _Host[T]] = {}
        self._ready: deque[_Host[T]] = deque()
        self._heap: list[tuple[float, int, _Host[T]]] = []
        self._idle: list[tuple[float, int, _Host[T]]] = []  # hosts to forget once due
        self._seq = 0
        self._queued = 0
        self._in_flight = 0

    def __len__(self) -> int:
        """Requests queued and not yet handed out."""
        return self._queued

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def host_count(self) -> int:
        return len(self._hosts)

    def set_host_delay(self, host: str, delay: float) -> None:
        """Override the start spacing of one host (robots ``Crawl-delay``, autothrottle)."""
        self._delays[host] = delay
        state = self._hosts.get(host)
        if state is not None:
            state.delay = delay

    def host_delay(self, host: str) -> float:
        return self._delays.get(host, self._delay)

    def push(self, request: T, now: float) -> None:
        host = request.host
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host(host, self._delays.get(host, self._delay))
        state.queue.append(request)
        self._queued += 1
        self._place(state, now)

    def push_front(self, request: T, now: float) -> None:
        """Queue ``request`` ahead of its host's other requests (it was handed out too early)."""
        host = request.host
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host(host, self._delays.get(host, self._delay))
        state.queue.appendleft(request)
        self._queued += 1
        self._place(state, now)

    def pop(self, now: float) -> T | None:
        """The next request that may start at ``now``, marked in flight; None if none may."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            state = heapq.heappop(heap)[2]
            state.in_heap = False
            self._place(state, now)
        ready = self._ready
        while ready:
            state = ready.popleft()
            state.in_ready = False
            if not state.queue or state.in_flight >= self._per_host:
                continue
            if state.next_start > now:
                self._place(state, now)
                continue
            request = state.queue.popleft()
            self._queued -= 1
            state.in_flight += 1
            self._in_flight += 1
            state.next_start = now + state.delay
            self._place(state, now)
            return request
        return None

    def finish(self, host: str, now: float) -> None:
        """A request to ``host`` handed out by ``pop`` has ended."""
        state = self._hosts[host]
        state.in_flight -= 1
        self._in_flight -= 1
        if state.queue:
            self._place(state, now)
        elif state.in_flight == 0:
            self._retire(state, now)

    def _retire(self, state: _Host[T], now: float) -> None:
        # An idle host is forgotten only once its spacing has passed, so the
        # next request to it still waits out the delay.
        if state.next_start <= now:
            del self._hosts[state.name]
        else:
            self._seq += 1
            heapq.heappush(self._idle, (state.next_start, self._seq, state))
        idle = self._idle
        while idle and idle[0][0] <= now:
            old = heapq.heappop(idle)[2]
            if (
                not old.queue
                and old.in_flight == 0
                and old.next_start <= now
                and self._hosts.get(old.name) is old
            ):
                del self._hosts[old.name]

    def pause_host(self, host: str, until: float, now: float) -> None:
        """Start nothing on ``host`` before ``until`` (a server's ``Retry-After``)."""
        state = self._hosts.get(host)
        if state is None:
            return
        if until > state.next_start:
            state.next_start = until
            self._place(state, now)

    def next_wakeup(self) -> float | None:
        """When a host held back only by its spacing becomes due, if any is."""
        return self._heap[0][0] if self._heap else None

    def has_ready(self) -> bool:
        return bool(self._ready)

    def drain(self) -> list[T]:
        """Remove and return every queued request (shutdown: hand them back to the store)."""
        drained: list[T] = []
        for state in self._hosts.values():
            drained.extend(state.queue)
            state.queue.clear()
        self._queued = 0
        self._ready.clear()
        self._heap.clear()
        for state in list(self._hosts.values()):
            state.in_ready = state.in_heap = False
            if state.in_flight == 0:
                del self._hosts[state.name]
        return drained

    def _place(self, state: _Host[T], now: float) -> None:
        if state.in_ready or state.in_heap or not state.queue:
            return
        if state.in_flight >= self._per_host:
            return  # finish() places it again
        if state.next_start <= now:
            state.in_ready = True
            self._ready.append(state)
        else:
            state.in_heap = True
            self._seq += 1
            heapq.heappush(self._heap, (state.next_start, self._seq, state))
