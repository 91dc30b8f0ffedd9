"""What the engine needs from a store, as ports, and ``Store``: all of them, which every
backend implements.

A store holds many jobs. Each job has a frontier of request rows moving
through the lifecycle in ``shoal.core.lifecycle`` and, for each finished
row, exactly one result row. All times are Unix seconds passed in by the
caller, so that tests control the clock and workers on many machines agree.

Admission is exact: a request is admitted at most once per job (by
fingerprint), and only an admitted request takes its host's next sequence
number or counts towards the job's limits (``set_limits``). What admission
turns away over a limit is counted per job under a reason (``counters``),
beside the reasons the engine reports in ``Completion.counters``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Literal, Protocol, TypeAlias

from shoal.core.filters import ResultFilter
from shoal.core.model import (
    Completion,
    FetchResult,
    FoundRequest,
    HostView,
    JobCounts,
    JobInfo,
    JobSummary,
    NewRequest,
    Request,
    WorkerInfo,
)

__all__ = [
    "HOST_QUANTUM",
    "HOST_REGRAB",
    "REOPENABLE",
    "FleetPort",
    "FrontierPort",
    "HostStatePort",
    "JobsPort",
    "Reopen",
    "ResultsPort",
    "Store",
]

Reopen: TypeAlias = Literal["failed", "all", "pages"]
"""Which finished rows a rerun fetches again: the failed, all, or the pages (2xx)."""
REOPENABLE: tuple[str, ...] = ("failed", "all", "pages")

HOST_QUANTUM = 5.0
"""Seconds a worker owns a host before handing it over, when other workers are alive."""
HOST_REGRAB = 0.5
"""Seconds after a handover before the same worker may claim the host again."""


class JobsPort(Protocol):
    """The jobs a store holds: created, found, listed, steered, reopened and removed."""

    async def ensure_job(self, name: str, *, mode: str, config: Mapping[str, object]) -> JobInfo:
        """Return the job called ``name``, creating it if it does not exist."""
        ...

    async def get_job(self, name: str) -> JobInfo | None: ...

    async def list_jobs(self) -> list[JobInfo]: ...

    async def delete_job(self, job_id: int, *, alive_since: float | None = None) -> bool:
        """Remove the job and all its rows in one transaction: frontier, results, per-host
        state (robots included), counters, workers, and the saved bodies no other job
        refers to. With ``alive_since``, a job with a worker whose heartbeat is at or
        after it is left alone and False returned; otherwise True (also for a job that
        was gone already). The job's id is never given to another job."""
        ...

    async def size_bytes(self) -> int:
        """How many bytes the whole store takes (all jobs): files on disk, or tables."""

    async def update_job(self, job_id: int, *, config: Mapping[str, object]) -> None:
        """Replace the settings the job records (a rerun that changed some)."""
        ...

    async def set_desired(self, job_id: int, desired: str | None) -> None:
        """Record what an operator asks of the job (``JobInfo.desired``): ``running``,
        ``paused`` or ``cancelled`` (None: nothing). The store only keeps it; the service
        acts on it."""
        ...

    async def reopen(self, job_id: int, *, which: Reopen, depth: int | None = None) -> int:
        """Send finished rows back to ``pending`` to be fetched again, deleting their
        results in the same transaction; returns how many. ``which``: ``failed`` (an
        error kind other than ``robots_disallowed``, or a 5xx status), ``all``, or
        ``pages`` (2xx responses: pages whose links are to be read again); with
        ``depth``, only rows at that depth. Only finished rows move: an open row is
        never touched, so a row still leased by a live worker keeps its lease."""
        ...

    async def revisit(
        self, job_id: int, *, fetched_before: float | None = None, keep_history: int, now: float
    ) -> int:
        """A recrawl: send finished rows back to ``pending`` (as ``reopen`` does), keeping
        their results; returns how many. Only rows whose result was fetched (or last
        confirmed unchanged) before ``fetched_before`` move, or all finished rows when it is
        None. Each leased row then carries its result's validators, status, body hash and
        error kind (``Request.revisit``), and ``complete`` settles its new result by its
        ``change``:
        ``unchanged`` keeps the result (body and fields) and only sets its ``fetched_at``
        (and any new ``etag``/``last_modified``); ``changed`` or ``gone`` moves the result
        to the job's history and records the new one. ``keep_history`` (0 to
        ``MAX_KEEP_HISTORY``, else ``ConfigError``) is how many replaced results the job
        keeps per URL from now on, the oldest dropped first. ``reopen`` clears a row's
        revisit: a result it deleted has nothing to compare with."""
        ...


class FrontierPort(Protocol):
    """A job's frontier: admission, leases, completion in batches, and its counts."""

    async def add_requests(self, job_id: int, requests: Sequence[NewRequest], *, now: float) -> int:
        """Admit requests as ``pending``, due from ``now``. Returns how many were admitted.

        A request whose fingerprint is already in the job, or earlier in the same batch (the
        first one wins), is a duplicate and is ignored: it takes no host sequence number and
        counts towards no limit. A new request is then dropped, in batch order, once the job
        has admitted ``max_pages`` (counted under ``"max_pages"``) or else once its host has
        admitted ``max_pages_per_host`` (counted under ``"host_page_limit"``). A dropped
        request is not remembered: after raising the limits it can be admitted."""
        ...

    async def set_limits(
        self, job_id: int, *, max_pages: int | None, max_pages_per_host: int | None
    ) -> None:
        """Persist the job's admission limits (None: no limit), counted over every request the
        job ever admitted, for every later admission by any process. Lowering a limit below
        what was admitted already removes nothing; it only stops further admission. Raises
        ``ConfigError`` for a negative limit."""
        ...

    async def lease(
        self,
        job_id: int,
        owner: str,
        *,
        limit: int,
        now: float,
        ttl: float,
        max_depth: int | None = None,
        gap: float = 0.0,
        quantum: float = HOST_QUANTUM,
    ) -> list[Request]:
        """Move up to ``limit`` due rows (pending, retry-wait due by ``now``, or leased with an
        expired lease) to ``leased`` by ``owner`` until ``now + ttl``; shallowest depth first,
        then round-robin across hosts (the n-th admitted URL of every host before the
        (n+1)-th of any), then admission order. With ``max_depth``, deeper rows wait.

        A row taken over from an expired lease is treated as ``release_leases(...,
        crashed=True)`` treats it (its worker vanished): its ``attempts`` stay as they are,
        it comes back ``suspect``, and its ``crashes`` grow by one if it had been marked
        started (``mark_started``).

        Hosts are owned by one worker at a time, so that politeness (requests in flight,
        delay between starts), which each worker enforces for its own requests, holds across
        all workers of the job. A row is leased only from a host ``owner`` owns, or one it
        claims now: a host nobody owns (never owned, released, or its owner's ownership
        expired) whose ``next_start`` has come. Ownership lasts ``ttl`` and is renewed with
        the leases. When another worker of the job is alive (registered, heartbeat within
        ``ttl``), a host owned for ``quantum`` seconds takes no new leases; once ``owner``
        holds none of its rows any more, the host is released for any other worker to claim,
        with ``next_start`` ``gap`` after ``now`` or after the ``now`` of the last ``complete``
        by ``owner`` that settled rows, whichever is later: each request ``owner`` sent went
        before the batch that settled its row was written, and that batch may be written
        after this lease's ``now`` was read but before the lease runs. ``owner`` itself may
        claim the host again only ``HOST_REGRAB`` seconds later. Alone, a worker keeps its
        hosts."""
        ...

    async def min_open_depth(self, job_id: int) -> int | None:
        """The smallest depth among open rows (pending, retry-wait or leased), or None.

        A depth-limited crawl leases with ``max_depth`` set to this, so that no page
        is fetched before every shallower page is finished: each URL then gets the
        depth of its shortest path, exactly as a breadth-first crawl would.
        """
        ...

    async def complete(self, job_id: int, owner: str, batch: Completion, *, now: float) -> int:
        """In ONE transaction: record results (rows become done or failed, never a second result
        for a row), move retries to retry-wait, release rows, add ``batch.counters`` to the
        job's counters (a batch of counters alone is written too), admit discovered requests
        (as ``add_requests`` does, limits and all). Returns how many discovered requests were
        admitted.

        A result is accepted for any row not yet done or failed, whoever holds it: the first
        result wins. A retry or a release applies only to a row still leased by ``owner``;
        once its lease expired and another owner took the row, it is ignored."""
        ...

    async def renew_leases(self, job_id: int, owner: str, *, now: float, ttl: float) -> int:
        """Extend every lease and host ownership ``owner`` holds; returns how many leases."""
        ...

    async def release_leases(
        self, job_id: int, owner: str, *, now: float, crashed: bool = False
    ) -> int:
        """Return every row ``owner`` holds to pending (or retry-wait if it had attempts), due
        at once, and release its hosts for anyone to claim (``next_start`` as on a hand-over,
        see ``lease``: the host's gap after ``now`` or after ``owner``'s last ``complete``,
        whichever is later); returns how many rows. Attempts are left alone.

        ``crashed=True`` is for taking back the leases of a worker that died, whose fetches
        may be what killed it: every row comes back ``suspect`` (``Request.suspect``), and
        the rows it had marked started (``mark_started``) count one more crash
        (``Request.crashes``). A graceful release (``crashed=False``, shutdown) only turns
        rows marked started back into plain suspects: nothing died."""
        ...

    async def mark_started(
        self, job_id: int, owner: str, request_ids: Sequence[int], *, now: float
    ) -> int:
        """Durably mark rows as being fetched, before fetching them; returns how many were
        marked. Only rows still leased by ``owner`` with a lease not expired at ``now`` are
        marked: a row whose lease expired may be another worker's already.

        For suspect rows, so that a URL that kills every process fetching it is given up
        rather than fetched forever, while rows that were merely leased by a dying worker
        are not blamed: if ``owner`` dies before the row is finished, retried or released,
        taking its rows back (``release_leases(..., crashed=True)``, or an expired lease
        in ``lease``) counts a crash for each marked row. A retry clears the mark and the
        suspicion (the process survived that fetch); a release (``complete``'s
        ``released``, or ``release_leases`` without ``crashed``) clears the mark only."""
        ...

    async def next_due(self, job_id: int) -> float | None:
        """The earliest ``next_at`` among open rows not leased, or None if there are none."""
        ...

    async def counts(self, job_id: int) -> JobCounts: ...

    async def counters(self, job_id: int) -> dict[str, int]:
        """URLs rejected before admission, by reason, summed over the job's life: the engine's
        (``Completion.counters``) and admission's (``"max_pages"``, ``"host_page_limit"``).
        A URL turned away in several batches is counted each time."""
        ...


class HostStatePort(Protocol):
    """What every worker of a job shares about its hosts and its session: robots.txt
    data, the cookie jar, and a view of the hosts for a person."""

    async def get_robots(self, job_id: int, host: str, *, now: float) -> str | None:
        """The robots data stored for ``host``, or None if there is none or it expired
        (``now >= expires``)."""
        ...

    async def put_robots(self, job_id: int, host: str, data: str, *, expires: float) -> None:
        """Store ``data`` (opaque text, e.g. the engine's parsed robots.txt as JSON) for
        ``host`` until ``expires``, replacing what was there."""
        ...

    async def get_cookies(self, job_id: int) -> str | None:
        """The job's cookie jar as ``put_cookies`` stored it (opaque text), or None."""
        ...

    async def put_cookies(self, job_id: int, data: str) -> None:
        """Store the job's cookie jar (opaque text), replacing what was there."""
        ...

    async def hosts(self, job_id: int, *, limit: int = 50) -> list[HostView]:
        """The job's hosts with the most rows (at most ``limit``), for a person to look
        at: rows by state, pacing, robots.txt cached, owner."""
        ...


class FleetPort(Protocol):
    """The worker processes of a job: registered, alive (heartbeats), gone."""

    async def register_worker(
        self, job_id: int, owner: str, *, pid: int, hostname: str, now: float
    ) -> None: ...

    async def heartbeat(self, job_id: int, owner: str, *, now: float) -> None: ...

    async def unregister_worker(self, job_id: int, owner: str) -> None: ...

    async def list_workers(self, job_id: int) -> list[WorkerInfo]: ...


class ResultsPort(Protocol):
    """A job's results: read in pages, found by fingerprint, their history and bodies."""

    def iter_results(
        self,
        job_id: int,
        *,
        batch_size: int = 1000,
        with_bodies: bool = False,
        where: ResultFilter | None = None,
        after: int = -1,
    ) -> AsyncIterator[list[FetchResult]]:
        """Every result row of the job in admission order, as a consistent snapshot; only
        those ``where`` selects (filtered by the store's query) when it is given, and only
        those whose ``request_id`` is greater than ``after`` (a keyset page: the next page
        starts after the last id of the one before)."""
        ...

    async def find_requests(
        self, job_id: int, fingerprints: Sequence[bytes]
    ) -> dict[bytes, FoundRequest]:
        """The job's requests with these fingerprints (those it admitted), each with its
        result if it has one (without the body), from one consistent read. A fingerprint
        the job never admitted is not in the answer."""
        ...

    async def history(self, job_id: int, url: str) -> list[FetchResult]:
        """The results of ``url`` a recrawl replaced (without bodies), newest first; what
        the job has now is its result (``iter_results``)."""
        ...

    async def get_body(self, body_hash: str) -> bytes | None:
        """The saved (decompressed) body with that hash, if bodies were saved."""
        ...

    async def summary(self, job_id: int, *, percentiles: bool = True) -> JobSummary:
        """Counts, status classes, error kinds, bytes, latency percentiles and ``rejected``
        (the same as ``counters``), from one consistent read. ``percentiles`` False leaves
        ``p50_ms`` and ``p95_ms`` None: they sort the job's results, seconds for a job of
        a few hundred thousand, where the rest is one pass."""
        ...


class Store(JobsPort, FrontierPort, HostStatePort, FleetPort, ResultsPort, Protocol):
    """Persistent frontier and results. Every method is safe to call from one event loop."""

    @property
    def location(self) -> str:
        """Where the store lives, for messages (a path or a DSN without password)."""
        ...

    async def open(self) -> None:
        """Connect, create or migrate the schema. Raises ``StoreUnavailable`` or ``SchemaError``."""
        ...

    async def close(self) -> None: ...
