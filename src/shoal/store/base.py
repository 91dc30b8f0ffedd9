"""The one ``Store`` protocol every backend implements.

A store holds many jobs. Each job has a frontier of request rows moving
through the lifecycle in ``shoal.core.lifecycle`` and, for each finished
row, exactly one result row. All times are Unix seconds passed in by the
caller, so that tests control the clock and workers on many machines agree.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

from shoal.core.model import (
    Completion,
    FetchResult,
    JobCounts,
    JobInfo,
    JobSummary,
    NewRequest,
    Request,
    WorkerInfo,
)

__all__ = ["Store"]


class Store(Protocol):
    """Persistent frontier and results. Every method is safe to call from one event loop."""

    @property
    def location(self) -> str:
        """Where the store lives, for messages (a path or a DSN without password)."""
        ...

    async def open(self) -> None:
        """Connect, create or migrate the schema. Raises ``StoreUnavailable`` or ``SchemaError``."""
        ...

    async def close(self) -> None: ...

    # jobs
    async def ensure_job(self, name: str, *, mode: str, config: Mapping[str, object]) -> JobInfo:
        """Return the job called ``name``, creating it if it does not exist."""
        ...

    async def get_job(self, name: str) -> JobInfo | None: ...

    async def list_jobs(self) -> list[JobInfo]: ...

    # frontier
    async def add_requests(self, job_id: int, requests: Sequence[NewRequest], *, now: float) -> int:
        """Admit requests as ``pending``; duplicates by fingerprint are ignored. Returns how many
        were new."""
        ...

    async def lease(
        self, job_id: int, owner: str, *, limit: int, now: float, ttl: float
    ) -> list[Request]:
        """Move up to ``limit`` due rows (pending, retry-wait due by ``now``, or leased with an
        expired lease) to ``leased`` by ``owner`` until ``now + ttl``; shallowest depth first,
        then round-robin across hosts (the n-th admitted URL of every host before the
        (n+1)-th of any), then admission order."""
        ...

    async def complete(self, job_id: int, owner: str, batch: Completion, *, now: float) -> int:
        """In ONE transaction: record results (rows become done or failed, never a second result
        for a row), move retries to retry-wait, admit discovered requests, release rows.
        Returns how many discovered requests were new.

        A result is accepted for any row not yet done or failed, whoever holds it: the first
        result wins. A retry or a release applies only to a row still leased by ``owner``;
        once its lease expired and another owner took the row, it is ignored."""
        ...

    async def renew_leases(self, job_id: int, owner: str, *, now: float, ttl: float) -> int:
        """Extend every lease ``owner`` holds; returns how many."""
        ...

    async def release_leases(self, job_id: int, owner: str) -> int:
        """Return every row ``owner`` holds to pending (or retry-wait if it had attempts)."""
        ...

    async def next_due(self, job_id: int) -> float | None:
        """The earliest ``next_at`` among open rows not leased, or None if there are none."""
        ...

    async def counts(self, job_id: int) -> JobCounts: ...

    # workers
    async def register_worker(
        self, job_id: int, owner: str, *, pid: int, hostname: str, now: float
    ) -> None: ...

    async def heartbeat(self, job_id: int, owner: str, *, now: float) -> None: ...

    async def unregister_worker(self, job_id: int, owner: str) -> None: ...

    async def list_workers(self, job_id: int) -> list[WorkerInfo]: ...

    # results
    def iter_results(
        self, job_id: int, *, batch_size: int = 1000, with_bodies: bool = False
    ) -> AsyncIterator[list[FetchResult]]:
        """Every result row of the job in admission order, as a consistent snapshot."""
        ...

    async def get_body(self, body_hash: str) -> bytes | None:
        """The saved (decompressed) body with that hash, if bodies were saved."""
        ...

    async def summary(self, job_id: int) -> JobSummary: ...
