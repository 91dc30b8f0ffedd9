"""What a job is doing now, derived from what the store holds.

A job is ``running`` while a process that works on it is alive: its worker row's
heartbeat is within the lease time-to-live (the same rule by which a dead worker's
leases are taken over). Otherwise it is ``interrupted`` when rows remain unfinished,
and ``finished`` when none do. ``job_state`` is the one place this is decided.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from shoal.core.model import JobCounts, WorkerInfo

__all__ = ["JobState", "job_state", "live_workers"]


class JobState(StrEnum):
    RUNNING = "running"
    INTERRUPTED = "interrupted"
    FINISHED = "finished"


def live_workers(workers: Sequence[WorkerInfo], *, now: float, ttl: float) -> list[WorkerInfo]:
    """The workers whose last heartbeat is at most ``ttl`` seconds before ``now``."""
    return [w for w in workers if w.heartbeat_at >= now - ttl]


def job_state(
    *, counts: JobCounts, workers: Sequence[WorkerInfo], now: float, ttl: float
) -> JobState:
    """``running`` if a worker is alive, else ``interrupted`` if rows are open, else
    ``finished``."""
    if live_workers(workers, now=now, ttl=ttl):
        return JobState.RUNNING
    if counts.open:
        return JobState.INTERRUPTED
    return JobState.FINISHED
