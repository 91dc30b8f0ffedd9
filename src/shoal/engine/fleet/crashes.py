"""Crash safety: a job outlives the death of any of its worker processes.

A worker proves it lives by its heartbeat, which also renews its leases. The rows of a
worker that died (its pid gone on this machine, or its heartbeat stale anywhere) are
taken back at the next run's start or the next heartbeat, marked suspect: any of them
may be what killed it. A suspect row is fetched carefully (``CrashGuard``), so that a
URL that kills every process fetching it is given up after ``CRASH_LIMIT`` deaths.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable

from shoal.core.errors import StoreUnavailable
from shoal.core.kinds import ErrorKind
from shoal.core.model import Request
from shoal.core.ports import Store
from shoal.engine.fleet.leases import LeaseClock
from shoal.engine.fleet.patience import patiently
from shoal.engine.frontier.dispatch import Dispatcher
from shoal.engine.frontier.recorder import Recorder
from shoal.engine.resources import pid_alive

__all__ = ["CRASH_LIMIT", "CrashGuard", "heartbeat", "reclaim_dead_workers"]

log = logging.getLogger("shoal.engine.fleet.crashes")

CRASH_LIMIT = 3
"""Deaths of the process fetching a URL (it was marked started and never finished) after
which the URL is taken to be what kills it, and recorded as ``internal_error``."""


class CrashGuard:
    """Fetches the suspect rows of one run. ``fetch_and_write`` fetches a row in the host
    slot it holds and writes its outcome to the store before it returns."""

    def __init__(
        self,
        store: Store,
        job_id: int,
        owner: str,
        dispatch: Dispatcher,
        recorder: Recorder,
        *,
        fetch_and_write: Callable[[Request], Awaitable[None]],
    ) -> None:
        self._store = store
        self._job_id = job_id
        self._owner = owner
        self._dispatch = dispatch
        self._recorder = recorder
        self._fetch_and_write = fetch_and_write
        # Held from marking a row that was in flight when a process died until its outcome
        # is written, so that if this process dies too, that row alone is blamed.
        self._blame_lock = asyncio.Lock()
        self._deferred: set[int] = set()  # such rows sent to the back of the queue once

    async def fetch_carefully(self, request: Request) -> None:
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
        dispatch, recorder = self._dispatch, self._recorder
        if request.crashes > CRASH_LIMIT:
            dispatch.release(request)
            log.warning(
                "%s: its process died %d times fetching it; given up", request.url, request.crashes
            )
            recorder.record_failure(
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
                recorder.release(request)
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
                recorder.release(request)
                raise
            if dispatch.closed:
                recorder.release(request)
            else:
                dispatch.requeue(request)
            return
        store, job_id, owner = self._store, self._job_id, self._owner
        async with self._blame_lock if blamed else contextlib.nullcontext():
            try:
                marked = await patiently(
                    lambda: store.mark_started(job_id, owner, [request.id], now=time.time())
                )
            except asyncio.CancelledError:
                dispatch.release(request)
                recorder.release(request)
                raise
            if not marked:
                # The lease expired meanwhile: the row may be another worker's already.
                dispatch.release(request)
                recorder.release(request)
                return
            await self._fetch_and_write(request)


async def heartbeat(store: Store, job_id: int, owner: str, *, leases: LeaseClock) -> None:
    """Every third of a lease: this worker lives, its leases are renewed (and ``leases``
    told), and the rows of workers that died are taken back. Runs until cancelled."""
    lease_ttl = leases.ttl
    interval = lease_ttl / 3
    while True:
        await asyncio.sleep(interval)
        now = time.time()
        with contextlib.suppress(StoreUnavailable):
            await store.heartbeat(job_id, owner, now=now)
            await store.renew_leases(job_id, owner, now=now, ttl=lease_ttl)
            leases.renewed(now)
            # A worker of the job that died since (kill -9 on this machine, or silent for
            # three lease periods anywhere) gives its rows and hosts back now, not at expiry.
            await reclaim_dead_workers(store, job_id, owner, lease_ttl=lease_ttl)


async def reclaim_dead_workers(store: Store, job_id: int, owner: str, *, lease_ttl: float) -> None:
    """Release leases held by workers that died (pid gone here, or heartbeat stale)."""
    here = socket.gethostname()
    now = time.time()
    for worker in await store.list_workers(job_id):
        if worker.owner == owner:
            continue
        dead_here = worker.hostname == here and not pid_alive(worker.pid)
        stale = now - worker.heartbeat_at > 3 * lease_ttl
        if dead_here or stale:
            # Any of its rows may be what killed it: they come back suspect, and those
            # it had marked started count a crash (see CrashGuard.fetch_carefully).
            released = await store.release_leases(job_id, worker.owner, crashed=True, now=now)
            await store.unregister_worker(job_id, worker.owner)
            if released:
                log.info("took back %d leased rows from a stopped worker", released)
