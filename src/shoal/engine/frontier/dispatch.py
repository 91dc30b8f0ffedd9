"""The asyncio face of the host scheduler: workers wait here for a request.

A request that may start is handed straight to the longest-waiting worker
by resolving its future (FIFO, no thundering herd); a host held back by its
delay arms one timer (on the engine's clock) for the earliest due time. The fast path, a
request ready when a worker asks, does not suspend at all.

The hand-off is cancellation-safe: a worker cancelled after its future was
resolved, before it ran again, gives the request back (first in its host's
line, its slot freed) and passes the wake-up on, so nothing handed out is lost.
"""

from __future__ import annotations

import asyncio
from collections import deque

from shoal.core.model import Request
from shoal.core.schedule import HostScheduler
from shoal.engine.clock import REAL_CLOCK, Clock, Timer

__all__ = ["Dispatcher"]


class Dispatcher:
    def __init__(
        self, scheduler: HostScheduler[Request], *, low_water: int, clock: Clock = REAL_CLOCK
    ) -> None:
        self.scheduler = scheduler
        self._clock = clock
        self._waiters: deque[asyncio.Future[Request | None]] = deque()
        self._timer: Timer | None = None
        self._timer_at = 0.0
        self._closed = False
        self._low_water = low_water
        self.low = asyncio.Event()  # set when the queue runs low: time to lease more
        self.low.set()

    @property
    def queued(self) -> int:
        return len(self.scheduler)

    @property
    def in_flight(self) -> int:
        return self.scheduler.in_flight

    @property
    def closed(self) -> bool:
        return self._closed

    def add(self, requests: list[Request]) -> None:
        now = self._clock.monotonic()
        push = self.scheduler.push
        for request in requests:
            push(request, now)
        if len(self.scheduler) >= self._low_water:
            self.low.clear()
        self._wake(now)

    def acquire_nowait(self) -> Request | None:
        """A request that may start now, or None (then ``await acquire()``)."""
        if self._closed:
            return None
        request = self.scheduler.pop(self._clock.monotonic())
        if request is not None and len(self.scheduler) < self._low_water:
            self.low.set()
        return request

    async def acquire(self) -> Request | None:
        """The next request to fetch, or None once the dispatcher is closed."""
        request = self.acquire_nowait()
        if request is not None or self._closed:
            return request
        waiter: asyncio.Future[Request | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._arm_timer()
        if len(self.scheduler) < self._low_water:
            self.low.set()
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                handed = waiter.result()
                if handed is not None:
                    self._give_back(handed)
            raise

    def _give_back(self, request: Request) -> None:
        """``request`` was handed to a worker that was cancelled before it could start it:
        first in its host's line again, its slot free for the next waiter."""
        now = self._clock.monotonic()
        self.scheduler.push_front(request, now)
        self.scheduler.finish(request.host, now)
        self._wake(now)

    def release(self, request: Request) -> None:
        """``request`` (from ``acquire``) has finished; its host may start another."""
        now = self._clock.monotonic()
        self.scheduler.finish(request.host, now)
        if self._waiters:
            self._wake(now)

    def requeue(self, request: Request) -> None:
        """Hand ``request`` (from ``acquire``, already released) out again later, first in line
        for its host; the host's spacing counts from the start it just used."""
        now = self._clock.monotonic()
        self.scheduler.push_front(request, now)
        if self._waiters:
            self._wake(now)

    def set_host_delay(self, host: str, delay: float) -> None:
        self.scheduler.set_host_delay(host, delay)

    def host_delay(self, host: str) -> float:
        return self.scheduler.host_delay(host)

    def pause_host(self, host: str, until_monotonic: float) -> None:
        self.scheduler.pause_host(host, until_monotonic, self._clock.monotonic())

    def close(self) -> list[Request]:
        """Stop handing out work: waiting workers get None; returns what was still queued."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        return self.scheduler.drain()

    def _wake(self, now: float) -> None:
        waiters = self._waiters
        pop = self.scheduler.pop
        while waiters:
            waiter = waiters[0]
            if waiter.done():  # its worker was cancelled
                waiters.popleft()
                continue
            request = pop(now)
            if request is None:
                break
            waiters.popleft()
            waiter.set_result(request)
        if waiters:
            self._arm_timer()
        if len(self.scheduler) < self._low_water:
            self.low.set()

    def _arm_timer(self) -> None:
        due = self.scheduler.next_wakeup()
        if due is None:
            return
        if self._timer is not None:
            if self._timer_at <= due:
                return
            self._timer.cancel()
        self._timer_at = due
        self._timer = self._clock.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._closed:
            self._wake(self._clock.monotonic())
