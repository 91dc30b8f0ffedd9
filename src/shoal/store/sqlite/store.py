"""The embedded store: one SQLite file in WAL mode, written from one dedicated thread.

::

    event loop ──run_in_executor──▶ writer thread (one connection: every write, lease)
               ──run_in_executor──▶ reader thread (one connection: counts, summary, ...)
               ──run_in_executor──▶ one thread per iter_results (its own read snapshot)

Nothing blocks the loop: every call hands a function to the thread that owns
the connection. WAL lets the readers run beside the writer and keeps a
committed transaction across a ``kill -9`` (``synchronous=NORMAL`` risks only
the last transactions on power loss, never on a process crash). Several
processes may share one file: writes take the lock with ``BEGIN IMMEDIATE``
and wait up to ``busy_timeout`` seconds for it.

Errors: ``sqlite3`` exceptions never leave this module. They become
``StoreUnavailable`` when waiting or retrying may help (locked, I/O error,
cannot open) and ``StoreError`` otherwise (disk full, corrupt file), each
with a one-line message naming the file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from functools import partial
from types import TracebackType
from typing import Self, TypeVar

from shoal.core.errors import ConfigError, StoreError
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
from shoal.core.ports import HOST_QUANTUM, Reopen
from shoal.store._admission import check_limits
from shoal.store._admitted import AdmittedFingerprints
from shoal.store._codec import job_config_json
from shoal.store._hosts_view import hosts_from_rows, hosts_query, robots_query
from shoal.store._reopen import check_keep_history
from shoal.store.sqlite import frontier, reads
from shoal.store.sqlite import writes as ops
from shoal.store.sqlite.connections import ConnectionThread, open_reader, open_writer, store_error

__all__ = ["SQLiteStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class SQLiteStore:
    """The ``Store`` on one SQLite file; create it, then ``await store.open()``.

    ``busy_timeout`` is how many seconds a write waits for another process holding the
    file's write lock before failing with ``StoreUnavailable``.

    Each call is one transaction in the writer thread (writes, ``lease``) or a read on
    the reader thread (``counts``, ``next_due``, ``summary``, ...), so a progress poll
    never queues behind a large ``complete``. Opening checks the file before touching
    it: a foreign or newer file raises ``SchemaError`` and is left as it was.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 10.0) -> None:
        if busy_timeout < 0:
            raise ConfigError(f"busy_timeout must be ≥ 0, got {busy_timeout!r}")
        self._path = os.fspath(path)
        if self._path in ("", ":memory:") or self._path.startswith("file:"):
            # Every connection to ":memory:" is a different database; the store has several.
            raise ConfigError(f"the SQLite store needs a file path, not {self._path!r}")
        self._busy_timeout = busy_timeout
        self._writer: ConnectionThread | None = None
        self._reader: ConnectionThread | None = None
        self._open_lock = asyncio.Lock()
        # Used only inside the writer thread.
        self._admitted = AdmittedFingerprints()

    def __repr__(self) -> str:
        return f"SQLiteStore({self._path!r})"

    @property
    def location(self) -> str:
        return self._path

    async def open(self) -> None:
        """Create or migrate the file; calling it on an open store does nothing."""
        async with self._open_lock:
            if self._writer is not None:
                return
            self._admitted = AdmittedFingerprints()  # the file may have been replaced
            writer = ConnectionThread("shoal-sqlite-writer")
            await writer.start(partial(open_writer, self._path, self._busy_timeout))
            reader = ConnectionThread("shoal-sqlite-reader")
            try:
                await reader.start(partial(open_reader, self._path, self._busy_timeout))
            except BaseException:
                await writer.stop()
                raise
            self._writer, self._reader = writer, reader

    async def close(self) -> None:
        """Finish queued work, close the connections and let the threads end."""
        async with self._open_lock:
            writer, reader = self._writer, self._reader
            self._writer = self._reader = None
            try:
                if reader is not None:
                    await reader.stop()
            finally:
                if writer is not None:
                    await writer.stop()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- plumbing -----------------------------------------------------------

    def _guarded(
        self, what: str, fn: Callable[[sqlite3.Connection], T]
    ) -> Callable[[sqlite3.Connection], T]:
        path, busy_timeout = self._path, self._busy_timeout

        def run(conn: sqlite3.Connection) -> T:
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        log.debug("rollback after a failed %s also failed", what, exc_info=True)
                raise store_error(what, path, exc, busy_timeout) from exc

        return run

    async def _on(
        self, thread: ConnectionThread | None, what: str, fn: Callable[[sqlite3.Connection], T]
    ) -> T:
        if thread is None:
            raise StoreError(f"{what} failed on {self._path}: the store is not open")
        return await thread.run(thread.call, self._guarded(what, fn))

    async def _write(self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._on(self._writer, what, fn)

    async def _read(self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._on(self._reader, what, fn)

    # -- jobs ---------------------------------------------------------------

    async def ensure_job(self, name: str, *, mode: str, config: Mapping[str, object]) -> JobInfo:
        config_json = job_config_json(config, name=name)
        return await self._write(
            "ensure_job",
            partial(ops.ensure_job, name=name, mode=mode, config_json=config_json, now=time.time()),
        )

    async def get_job(self, name: str) -> JobInfo | None:
        return await self._read("get_job", partial(reads.get_job, name=name))

    async def update_job(self, job_id: int, *, config: Mapping[str, object]) -> None:
        config_json = job_config_json(config)
        await self._write(
            "update_job", partial(ops.update_job, job_id=job_id, config_json=config_json)
        )

    async def set_desired(self, job_id: int, desired: str | None) -> None:
        await self._write("set_desired", partial(ops.set_desired, job_id=job_id, desired=desired))

    async def reopen(self, job_id: int, *, which: Reopen, depth: int | None = None) -> int:
        return await self._write(
            "reopen",
            partial(ops.reopen, job_id=job_id, which=which, depth=depth, now=time.time()),
        )

    async def revisit(
        self, job_id: int, *, fetched_before: float | None = None, keep_history: int, now: float
    ) -> int:
        check_keep_history(keep_history)
        return await self._write(
            "revisit",
            partial(
                ops.revisit,
                job_id=job_id,
                fetched_before=fetched_before,
                keep=keep_history,
                now=now,
            ),
        )

    async def list_jobs(self) -> list[JobInfo]:
        return await self._read("list_jobs", reads.list_jobs)

    async def delete_job(self, job_id: int, *, alive_since: float | None = None) -> bool:
        return await self._write(
            "delete_job",
            partial(
                ops.delete_job, admitted=self._admitted, job_id=job_id, alive_since=alive_since
            ),
        )

    async def size_bytes(self) -> int:
        return await self._read("size_bytes", partial(reads.size_bytes, path=self._path))

    # -- frontier -----------------------------------------------------------

    async def add_requests(self, job_id: int, requests: Sequence[NewRequest], *, now: float) -> int:
        if not requests:
            return 0
        return await self._write(
            "add_requests",
            partial(
                ops.add_requests,
                admitted=self._admitted,
                job_id=job_id,
                requests=requests,
                now=now,
            ),
        )

    async def set_limits(
        self, job_id: int, *, max_pages: int | None, max_pages_per_host: int | None
    ) -> None:
        check_limits(max_pages=max_pages, max_pages_per_host=max_pages_per_host)
        await self._write(
            "set_limits",
            partial(
                ops.set_limits,
                job_id=job_id,
                max_pages=max_pages,
                max_pages_per_host=max_pages_per_host,
            ),
        )

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
        if limit <= 0:
            return []
        return await self._write(
            "lease",
            partial(
                frontier.lease,
                job_id=job_id,
                owner=owner,
                limit=limit,
                now=now,
                ttl=ttl,
                max_depth=max_depth,
                gap=gap,
                quantum=quantum,
            ),
        )

    async def min_open_depth(self, job_id: int) -> int | None:
        return await self._write("min_open_depth", partial(reads.min_open_depth, job_id=job_id))

    async def complete(self, job_id: int, owner: str, batch: Completion, *, now: float) -> int:
        if not len(batch) and not batch.counters:
            return 0
        return await self._write(
            "complete",
            partial(
                frontier.complete,
                admitted=self._admitted,
                job_id=job_id,
                owner=owner,
                batch=batch,
                now=now,
            ),
        )

    async def renew_leases(self, job_id: int, owner: str, *, now: float, ttl: float) -> int:
        return await self._write(
            "renew_leases",
            partial(frontier.renew_leases, job_id=job_id, owner=owner, now=now, ttl=ttl),
        )

    async def release_leases(
        self, job_id: int, owner: str, *, now: float, crashed: bool = False
    ) -> int:
        release = partial(
            frontier.release_leases, job_id=job_id, owner=owner, crashed=crashed, now=now
        )
        return await self._write("release_leases", release)

    async def mark_started(
        self, job_id: int, owner: str, request_ids: Sequence[int], *, now: float
    ) -> int:
        if not request_ids:
            return 0
        mark = partial(
            frontier.mark_started, job_id=job_id, owner=owner, request_ids=request_ids, now=now
        )
        return await self._write("mark_started", mark)

    async def next_due(self, job_id: int) -> float | None:
        return await self._read("next_due", partial(reads.next_due, job_id=job_id))

    async def counts(self, job_id: int) -> JobCounts:
        return await self._read("counts", partial(reads.counts, job_id=job_id))

    async def hosts(self, job_id: int, *, limit: int = 50) -> list[HostView]:
        query, robots = hosts_query("", "?", "?"), robots_query("", "?")
        return await self._read(
            "hosts",
            lambda conn: hosts_from_rows(
                conn.execute(query, (job_id, limit)).fetchall(),
                conn.execute(robots, (job_id,)).fetchall(),
            ),
        )

    async def counters(self, job_id: int) -> dict[str, int]:
        return await self._read("counters", partial(reads.counters, job_id=job_id))

    # -- hosts --------------------------------------------------------------

    async def get_robots(self, job_id: int, host: str, *, now: float) -> str | None:
        return await self._read(
            "get_robots", partial(reads.get_robots, job_id=job_id, host=host, now=now)
        )

    async def put_robots(self, job_id: int, host: str, data: str, *, expires: float) -> None:
        await self._write(
            "put_robots",
            partial(ops.put_robots, job_id=job_id, host=host, data=data, expires=expires),
        )

    # -- session ------------------------------------------------------------

    async def get_cookies(self, job_id: int) -> str | None:
        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT data FROM job_cookies WHERE job_id = ?", (job_id,))
            found = row.fetchone()
            return None if found is None else str(found[0])

        return await self._read("get_cookies", read)

    async def put_cookies(self, job_id: int, data: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            with ops.write_transaction(conn):
                conn.execute(
                    "INSERT INTO job_cookies (job_id, data) VALUES (?, ?)"
                    " ON CONFLICT (job_id) DO UPDATE SET data = excluded.data",
                    (job_id, data),
                )

        await self._write("put_cookies", write)

    # -- workers ------------------------------------------------------------

    async def register_worker(
        self, job_id: int, owner: str, *, pid: int, hostname: str, now: float
    ) -> None:
        await self._write(
            "register_worker",
            partial(
                ops.register_worker, job_id=job_id, owner=owner, pid=pid, hostname=hostname, now=now
            ),
        )

    async def heartbeat(self, job_id: int, owner: str, *, now: float) -> None:
        await self._write("heartbeat", partial(ops.heartbeat, job_id=job_id, owner=owner, now=now))

    async def unregister_worker(self, job_id: int, owner: str) -> None:
        await self._write(
            "unregister_worker", partial(ops.unregister_worker, job_id=job_id, owner=owner)
        )

    async def list_workers(self, job_id: int) -> list[WorkerInfo]:
        return await self._read("list_workers", partial(reads.list_workers, job_id=job_id))

    # -- results ------------------------------------------------------------

    async def iter_results(
        self,
        job_id: int,
        *,
        batch_size: int = 1000,
        with_bodies: bool = False,
        where: ResultFilter | None = None,
        after: int = -1,
    ) -> AsyncIterator[list[FetchResult]]:
        """Every result row of the job in request_id order, read in one snapshot.

        The snapshot is a read transaction on a connection of its own, held until the
        iteration ends; close the iterator (``aclose()``) if you stop early. While it is
        open, SQLite cannot checkpoint past it, so the -wal file grows.
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size must be ≥ 1, got {batch_size!r}")
        if self._writer is None:
            raise StoreError(f"iter_results failed on {self._path}: the store is not open")
        thread = ConnectionThread("shoal-sqlite-snapshot")
        await thread.start(partial(open_reader, self._path, self._busy_timeout))
        try:
            await self._on(thread, "iter_results", reads.begin_read)
            while True:
                batch = await self._on(
                    thread,
                    "iter_results",
                    partial(
                        reads.read_results,
                        job_id=job_id,
                        after=after,
                        limit=batch_size,
                        with_bodies=with_bodies,
                        where=where,
                    ),
                )
                if batch:
                    yield batch
                if len(batch) < batch_size:
                    return
                after = batch[-1].request_id
        finally:
            await thread.stop()

    async def find_requests(
        self, job_id: int, fingerprints: Sequence[bytes]
    ) -> dict[bytes, FoundRequest]:
        wanted = list(dict.fromkeys(fingerprints))
        return await self._read(
            "find_requests", partial(reads.find_requests, job_id=job_id, fingerprints=wanted)
        )

    async def history(self, job_id: int, url: str) -> list[FetchResult]:
        return await self._read("history", partial(reads.history, job_id=job_id, url=url))

    async def get_body(self, body_hash: str) -> bytes | None:
        return await self._read("get_body", partial(reads.get_body, body_hash=body_hash))

    async def summary(self, job_id: int, *, percentiles: bool = True) -> JobSummary:
        return await self._read(
            "summary", partial(reads.summary, job_id=job_id, percentiles=percentiles)
        )
