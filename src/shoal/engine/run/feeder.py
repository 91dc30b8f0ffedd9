"""A run's two tasks that face the store: feeding the dispatcher and flushing outcomes.

::

    store ──lease──▶ Feeder.feed ──▶ Dispatcher ──▶ workers ──▶ Recorder's buffer
      ▲                                                              │
      └──────────── Feeder.flush: complete(results, retries, links) ◀┘

``feed`` leases due rows while the dispatcher runs low and returns True once the
job has no open rows; ``flush`` writes the recorder's outcomes in batches, one
transaction each, and hands the results to the run's listeners. Both wait on
events (the dispatcher's ``low``, ``wanted``); the only timed waits are for what
no event tells of: a row coming due, and another worker's rows and hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

from shoal.core.model import FetchResult
from shoal.core.ports import Store
from shoal.engine.fleet.patience import complete_patiently, patiently
from shoal.engine.frontier.dispatch import Dispatcher
from shoal.engine.frontier.recorder import Recorder
from shoal.engine.frontier.stats import LiveStats

__all__ = ["Feeder", "ResultListener"]

ResultListener = Callable[[Sequence[FetchResult]], None]

# Seconds between looks at the store for what only other workers change (their rows,
# their hosts); how soon a host another worker hands over is looked at again; the
# shortest wait for a row coming due.
_FLEET_POLL = 1.0
_HANDOVER_POLL = 0.2
_MIN_WAIT = 0.02


class Feeder:
    """Leases rows into a run's dispatcher and writes its recorder's batches back.

    ``window`` rows at most are queued or in flight; a lease asks for the room left
    once the queue is down to half of it. ``batch_size`` results make a write wanted
    at once; past ``max_buffer`` outcomes the workers wait for it (``written``).
    """

    def __init__(
        self,
        store: Store,
        job_id: int,
        owner: str,
        dispatch: Dispatcher,
        recorder: Recorder,
        stats: LiveStats,
        *,
        stopping: Callable[[], bool],
        on_grew: Callable[[], None],
        listeners: Sequence[ResultListener],
        window: int,
        batch_size: int,
        max_buffer: int,
        flush_interval: float,
        lease_ttl: float,
        gap: float,
        strict_depth: bool,
    ) -> None:
        self._store = store
        self._job_id = job_id
        self._owner = owner
        self._dispatch = dispatch
        self._recorder = recorder
        self._stats = stats
        self._stopping = stopping
        self._on_grew = on_grew
        self._listeners = listeners
        self._window = window
        self.batch_size = batch_size
        self.max_buffer = max_buffer
        self._flush_interval = flush_interval
        self._lease_ttl = lease_ttl
        self._gap = gap
        self._strict_depth = strict_depth
        self.admitting = False
        """An admission runs beside the run: the job is not done while it does."""
        self.wanted = asyncio.Event()
        """Set to have the recorder's buffer written now."""
        self._flushed = asyncio.Event()
        self._finished = False

    def finish(self) -> None:
        """No more outcomes are coming: ``flush`` writes what is left and returns."""
        self._finished = True
        self.wanted.set()

    async def written(self) -> None:
        """Wait until the next batch is written (a worker over ``max_buffer`` does)."""
        self._flushed.clear()
        await self._flushed.wait()

    async def feed(self) -> bool:
        """Keep the dispatcher stocked; return True once the job has no open rows."""
        dispatch, recorder = self._dispatch, self._recorder
        store, job_id, owner = self._store, self._job_id, self._owner
        wake = dispatch.low
        while not self._stopping():
            wake.clear()
            room = self._window - dispatch.queued - dispatch.in_flight
            if room > 0 and dispatch.queued < self._window // 2:
                # A depth-limited crawl goes level by level (see Store.min_open_depth).
                level = (
                    await patiently(lambda: store.min_open_depth(job_id))
                    if self._strict_depth
                    else None
                )
                now = time.time()
                requests = await patiently(
                    lambda room=room, level=level, now=now: store.lease(  # type: ignore[misc]
                        job_id,
                        owner,
                        limit=room,
                        now=now,
                        ttl=self._lease_ttl,
                        max_depth=level,
                        gap=self._gap,
                    )
                )
                if requests:
                    recorder.leased(requests, now)
                    dispatch.add(requests)
                    continue
                if dispatch.queued == 0 and dispatch.in_flight == 0:
                    if len(recorder.buffer):
                        self.wanted.set()
                        await wake.wait()  # the flusher's write wakes this
                        continue
                    if not self.admitting:
                        counts = await patiently(lambda: store.counts(job_id))
                        if counts.open == 0:
                            return True
                await _wait(wake, await self._until_due())
            else:
                # Stocked: the dispatcher wakes this when its queue runs low.
                await wake.wait()
        return False

    async def _until_due(self) -> float:
        """Seconds until the store may have rows to lease that it had none of just now.

        What this run does (a batch written, rows admitted, requests let go) sets the
        dispatcher's ``low`` event; this bounds the wait for what no event tells of: a
        waiting row coming due, and, in a fleet, the other workers' rows and hosts."""
        due = await patiently(lambda: self._store.next_due(self._job_id))
        if due is None:
            return _FLEET_POLL
        wait = due - time.time()
        if wait <= 0:
            # Due but not leased: its host is another worker's, and is handed over soon.
            return _HANDOVER_POLL
        return min(_FLEET_POLL, max(_MIN_WAIT, wait))

    def landed(self, results: Sequence[FetchResult], admitted: int) -> None:
        """A batch is written (by ``flush``, or apart by the run): count the rows its links
        admitted, hand its results to the listeners, and let the feeder look again."""
        self._stats.total += admitted
        if admitted:
            self._on_grew()
        if results:
            for listener in self._listeners:
                listener(results)
        self._dispatch.low.set()

    async def flush(self) -> None:
        """Write the recorder's outcomes in batches until ``finish`` and the buffer is empty."""
        store, job_id, owner = self._store, self._job_id, self._owner
        recorder, wanted = self._recorder, self.wanted
        while True:
            if not recorder.pending():
                if self._finished:
                    self._flushed.set()
                    return
                wanted.clear()
                await _wait(wanted, self._flush_interval)
                if not recorder.pending():
                    continue
            batch = recorder.take()
            admitted = await complete_patiently(store, job_id, owner, batch)
            self._flushed.set()
            self.landed(batch.results, admitted)
            if not self._finished and len(recorder.buffer) < self.batch_size:
                await _wait(wanted, self._flush_interval)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Until ``event`` is set or ``seconds`` have passed, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
