"""The engine's clock: what its parts read and wait on, so tests can run them on a fake.

``Clock`` is the small protocol the dispatcher, the recorder and the send spacing
take; ``REAL_CLOCK`` is the system's. ``FakeClock`` is virtual time that jumps
ahead, as trio's ``MockClock`` with ``autojump_threshold=0`` does: whenever every
task waits and the loop has nothing else to run, time moves to the next timer or
sleep due, at once, so a test of minutes of delays runs in milliseconds.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["REAL_CLOCK", "Clock", "FakeClock", "RealClock", "Timer"]


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, read now (not the loop's cached time)."""
        ...

    def time(self) -> float:
        """Seconds since the epoch: what the store records."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        """Run ``callback`` on the loop once ``monotonic()`` reaches ``when``."""
        ...


class RealClock:
    """The system's clocks, and the running loop's timers."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        # The loop's own time may be a cached or coarser reading of the same clock: a
        # timer set by how long is left fires no earlier than ``when`` by either.
        return asyncio.get_running_loop().call_later(max(0.0, when - time.monotonic()), callback)


REAL_CLOCK: Clock = RealClock()


class _FakeTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], object]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Virtual time for tests, jumping to the next thing due whenever the loop is idle.

    Idle means the asyncio event loop has no callback ready to run; it is read from the
    default loop's ready queue, so this clock runs on asyncio's loop (not uvloop).
    """

    def __init__(self, *, start: float = 1000.0, epoch: float = 1_700_000_000.0) -> None:
        self._now = start
        self._epoch_offset = epoch - start
        self._due: list[tuple[float, int, _FakeTimer]] = []
        self._seq = 0
        self._watching = False

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._epoch_offset

    async def sleep(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not woken.done():
                woken.set_result(None)

        timer = self.call_at(self._now + max(0.0, seconds), wake)
        try:
            await woken
        finally:
            timer.cancel()

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        timer = _FakeTimer(callback)
        self._seq += 1
        heapq.heappush(self._due, (when, self._seq, timer))
        self._watch()
        return timer

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds`` and run what came due (for a test that steps)."""
        self._run_due(self._now + seconds)

    def _watch(self) -> None:
        if not self._watching:
            self._watching = True
            asyncio.get_running_loop().call_soon(self._jump_when_idle)

    def _jump_when_idle(self) -> None:
        self._watching = False
        loop = asyncio.get_running_loop()
        if getattr(loop, "_ready", None):  # something else runs first
            self._watch()
            return
        while self._due and self._due[0][2].cancelled:
            heapq.heappop(self._due)
        if self._due:
            self._run_due(max(self._now, self._due[0][0]))

    def _run_due(self, now: float) -> None:
        self._now = max(self._now, now)
        due = self._due
        while due and due[0][0] <= self._now:
            timer = heapq.heappop(due)[2]
            if not timer.cancelled:
                timer.callback()
        if due:
            self._watch()
