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
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from types import TracebackType
from typing import Self, TypeVar

from shoal.core.errors import ConfigError, SchemaError, StoreError, StoreUnavailable
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
from shoal.store.sqlite import reads, schema
from shoal.store.sqlite import writes as ops

__all__ = ["SQLiteStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_WRITER_PRAGMAS = (
    "PRAGMA synchronous = NORMAL",
    "PRAGMA cache_size = -65536",  # KiB: 64 MiB keeps a large frontier's indexes in memory
    "PRAGMA temp_store = MEMORY",
    # Random fingerprints dirty pages all over the dedupe index; checkpointing every ~40 MiB
    # of WAL instead of every 4 MiB writes each page back far less often (+30-60% admission).
    "PRAGMA wal_autocheckpoint = 10000",
    "PRAGMA journal_size_limit = 67108864",  # trim the -wal file back to 64 MiB after use
)
_READER_PRAGMAS = (
    "PRAGMA query_only = ON",
    "PRAGMA cache_size = -16384",
    "PRAGMA temp_store = MEMORY",
)
# Errors worth waiting out or retrying; the rest will not fix themselves.
_TRANSIENT = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_PROTOCOL")
_REASONS = {
    "SQLITE_FULL": "the disk is full",
    "SQLITE_READONLY": "the database is read-only",
    "SQLITE_CORRUPT": "the database file is corrupt",
    "SQLITE_NOTADB": "the file is not an SQLite database",
    "SQLITE_IOERR": "disk I/O error",
    "SQLITE_CANTOPEN": "cannot open the database file",
    "SQLITE_PERM": "permission denied",
}


def _error_name(exc: sqlite3.Error) -> str:
    return getattr(exc, "sqlite_errorname", None) or ""


def _store_error(what: str, path: str, exc: sqlite3.Error, busy_timeout: float) -> StoreError:
    name = _error_name(exc)
    base_name = "_".join(name.split("_", 2)[:2])  # SQLITE_IOERR_WRITE → SQLITE_IOERR
    if base_name in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        reason = f"the database stayed locked by another connection for over {busy_timeout:g}s"
    else:
        reason = _REASONS.get(base_name) or str(exc) or name or type(exc).__name__
    if what == "open":
        message = f"cannot open store {path}: {reason}"
    else:
        message = f"{what} failed on {path}: {reason}"
    if base_name in _TRANSIENT:
        return StoreUnavailable(message)
    return StoreError(message)


def _check_path(path: str) -> None:
    """Refuse, with a message naming the path, what SQLite would refuse obscurely."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise StoreUnavailable(f"cannot open store {path}: it is a directory")
    if not os.path.exists(parent):
        raise StoreUnavailable(f"cannot open store {path}: directory {parent} does not exist")
    if not os.path.isdir(parent):
        raise StoreUnavailable(f"cannot open store {path}: {parent} is not a directory")
    # WAL keeps two files beside the database, so the directory must be writable too.
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreUnavailable(f"cannot open store {path}: directory {parent} is not writable")
    if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        raise StoreUnavailable(f"cannot open store {path}: the file is not readable and writable")


def _open_writer(path: str, busy_timeout: float) -> sqlite3.Connection:
    _check_path(path)
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    except sqlite3.Error as exc:
        raise _store_error("open", path, exc, busy_timeout) from exc
    try:
        try:
            # Before anything writes: a foreign file must be left exactly as it was.
            schema.check_version(conn, path)
        except sqlite3.DatabaseError as exc:
            if _error_name(exc).startswith("SQLITE_NOTADB"):
                raise SchemaError(f"{path} is not a shoal store (not an SQLite database)") from exc
            raise
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("%s: journal mode is %s, not WAL; concurrent readers will wait", path, mode)
        for pragma in _WRITER_PRAGMAS:
            conn.execute(pragma)
        version = schema.migrate(conn, path)
        log.debug("opened %s (schema %d)", path, version)
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlite3.Error):
            raise _store_error("open", path, exc, busy_timeout) from exc
        raise
    return conn


def _open_reader(path: str, busy_timeout: float) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
        try:
            for pragma in _READER_PRAGMAS:
                conn.execute(pragma)
        except BaseException:
            conn.close()
            raise
    except sqlite3.Error as exc:
        raise _store_error("open", path, exc, busy_timeout) from exc
    return conn


class _ConnectionThread:
    """One thread that owns one connection; every use of the connection runs there."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None

    async def start(self, connect: Callable[[], sqlite3.Connection]) -> None:
        try:
            await self.run(self._connect, connect)
        except BaseException:
            # If this await was cancelled, the connect may still finish: close it after.
            self._executor.submit(self._disconnect)
            self._executor.shutdown(wait=False)
            raise

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _connect(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._conn = connect()

    def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the connection; only ever called in this thread."""
        assert self._conn is not None, "connection used before start()"
        return fn(self._conn)

    async def stop(self) -> None:
        # Queue the close before shutting down: it still runs if this await is cancelled.
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
        self._executor.shutdown(wait=False)
        await future

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


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
        self._writer: _ConnectionThread | None = None
        self._reader: _ConnectionThread | None = None
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
            writer = _ConnectionThread("shoal-sqlite-writer")
            await writer.start(partial(_open_writer, self._path, self._busy_timeout))
            reader = _ConnectionThread("shoal-sqlite-reader")
            try:
                await reader.start(partial(_open_reader, self._path, self._busy_timeout))
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
                raise _store_error(what, path, exc, busy_timeout) from exc

        return run

    async def _on(
        self, thread: _ConnectionThread | None, what: str, fn: Callable[[sqlite3.Connection], T]
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
                ops.lease,
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
                ops.complete,
                admitted=self._admitted,
                job_id=job_id,
                owner=owner,
                batch=batch,
                now=now,
            ),
        )

    async def renew_leases(self, job_id: int, owner: str, *, now: float, ttl: float) -> int:
        return await self._write(
            "renew_leases", partial(ops.renew_leases, job_id=job_id, owner=owner, now=now, ttl=ttl)
        )

    async def release_leases(
        self, job_id: int, owner: str, *, now: float, crashed: bool = False
    ) -> int:
        release = partial(ops.release_leases, job_id=job_id, owner=owner, crashed=crashed, now=now)
        return await self._write("release_leases", release)

    async def mark_started(
        self, job_id: int, owner: str, request_ids: Sequence[int], *, now: float
    ) -> int:
        if not request_ids:
            return 0
        mark = partial(
            ops.mark_started, job_id=job_id, owner=owner, request_ids=request_ids, now=now
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
        thread = _ConnectionThread("shoal-sqlite-snapshot")
        await thread.start(partial(_open_reader, self._path, self._busy_timeout))
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

    async def summary(self, job_id: int) -> JobSummary:
        return await self._read("summary", partial(reads.summary, job_id=job_id))
