"""The SQLite store's reads: jobs, frontier counts, robots, workers, results, the summary.

Plain synchronous functions on one connection, like ``writes`` (the
writes), run in the thread that owns ``conn``; none of them writes, so
``shoal.store.sqlite.store`` can hand most of them to its reader thread (a
``query_only`` connection) and ``iter_results`` to a snapshot thread of its
own, where a progress poll never queues behind a large ``complete``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shoal.core.filters import ResultFilter
from shoal.core.lifecycle import State
from shoal.core.model import (
    FetchResult,
    FoundRequest,
    JobCounts,
    JobInfo,
    JobSummary,
    WorkerInfo,
)
from shoal.store._codec import (
    RESULT_COLUMNS,
    decode_json,
    decompress,
    result_from_row,
    workers_from_rows,
)
from shoal.store._where import result_condition

__all__ = [
    "begin_read",
    "counters",
    "counts",
    "find_requests",
    "get_body",
    "get_job",
    "get_robots",
    "history",
    "list_jobs",
    "list_workers",
    "min_open_depth",
    "next_due",
    "read_results",
    "read_snapshot",
    "size_bytes",
    "summary",
]


@contextmanager
def read_snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """Several SELECTs that must see one consistent state (joins an open transaction)."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def begin_read(conn: sqlite3.Connection) -> None:
    """Open a read transaction; its snapshot is taken by the first SELECT."""
    conn.execute("BEGIN")


# -- jobs -------------------------------------------------------------------

_JOB_COLUMNS = "id, name, mode, created_at, config, desired"


def _job(row: Any) -> JobInfo:
    return JobInfo(
        id=row[0],
        name=row[1],
        mode=row[2],
        created_at=row[3],
        config=decode_json(row[4]),
        desired=row[5],
    )


def get_job(conn: sqlite3.Connection, name: str) -> JobInfo | None:
    row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE name = ?", (name,)).fetchone()
    return None if row is None else _job(row)


def list_jobs(conn: sqlite3.Connection) -> list[JobInfo]:
    return [_job(row) for row in conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY id")]


# -- frontier ---------------------------------------------------------------

_MIN_OPEN_DEPTH = f"""
SELECT min(d) FROM (
    SELECT min(depth) AS d FROM requests INDEXED BY requests_waiting
    WHERE job_id = :job_id AND state IN ({State.PENDING}, {State.RETRY_WAIT})
    UNION ALL
    SELECT min(depth) FROM requests INDEXED BY requests_leased
    WHERE job_id = :job_id AND state = {State.LEASED}
)
"""


def min_open_depth(conn: sqlite3.Connection, job_id: int) -> int | None:
    row = conn.execute(_MIN_OPEN_DEPTH, {"job_id": job_id}).fetchone()
    return None if row[0] is None else int(row[0])


def next_due(conn: sqlite3.Connection, job_id: int) -> float | None:
    row = conn.execute(
        "SELECT min(next_at) FROM requests INDEXED BY requests_waiting"
        f" WHERE job_id = ? AND state IN ({State.PENDING}, {State.RETRY_WAIT})",
        (job_id,),
    ).fetchone()
    return None if row[0] is None else float(row[0])


# Counted from indexes the hot path maintains anyway: counting triggers on every state
# change cost about a quarter of the write throughput, and counts() is called rarely.
_COUNT_WAITING = f"""
SELECT state, count(*) FROM requests INDEXED BY requests_waiting
WHERE job_id = ? AND state IN ({State.PENDING}, {State.RETRY_WAIT}) GROUP BY state
"""
_COUNT_LEASED = f"""
SELECT count(*) FROM requests INDEXED BY requests_leased WHERE job_id = ? AND state = {State.LEASED}
"""
# Every terminal row has exactly one result; a failed one has no status. A row a recrawl
# sent back keeps its result while it is open (see Store.revisit): not finished.
_COUNT_FINISHED = "SELECT count(*), count(status) FROM results WHERE job_id = ?"
_COUNT_REVISITING = f"""
SELECT count(*), count(s.status) FROM requests q INDEXED BY requests_revisiting
JOIN results s ON s.request_id = q.id
WHERE q.job_id = ? AND q.revisit IS NOT NULL
    AND q.state IN ({State.PENDING}, {State.LEASED}, {State.RETRY_WAIT})
"""


def counts(conn: sqlite3.Connection, job_id: int) -> JobCounts:
    with read_snapshot(conn):
        waiting = dict(conn.execute(_COUNT_WAITING, (job_id,)).fetchall())
        (leased,) = conn.execute(_COUNT_LEASED, (job_id,)).fetchone()
        finished, done = conn.execute(_COUNT_FINISHED, (job_id,)).fetchone()
        open_finished, open_done = conn.execute(_COUNT_REVISITING, (job_id,)).fetchone()
    finished -= open_finished
    done -= open_done
    return JobCounts(
        pending=waiting.get(State.PENDING, 0),
        leased=leased,
        retry_wait=waiting.get(State.RETRY_WAIT, 0),
        done=done,
        failed=finished - done,
    )


def counters(conn: sqlite3.Connection, job_id: int) -> dict[str, int]:
    rows = conn.execute(
        "SELECT name, n FROM job_counters WHERE job_id = ? ORDER BY name", (job_id,)
    ).fetchall()
    return dict(rows)


# -- hosts ------------------------------------------------------------------

# Valid while now < expires.
_GET_ROBOTS = "SELECT robots FROM hosts WHERE job_id = ? AND host = ? AND robots_expires > ?"


def get_robots(conn: sqlite3.Connection, job_id: int, host: str, now: float) -> str | None:
    row = conn.execute(_GET_ROBOTS, (job_id, host, now)).fetchone()
    return None if row is None else str(row[0])


# -- workers ----------------------------------------------------------------


def list_workers(conn: sqlite3.Connection, job_id: int) -> list[WorkerInfo]:
    rows = conn.execute(
        "SELECT owner, pid, hostname, started_at, heartbeat_at FROM workers"
        " WHERE job_id = ? ORDER BY started_at, owner",
        (job_id,),
    )
    return workers_from_rows(rows)


# -- results ----------------------------------------------------------------

_READ_RESULTS = f"""
SELECT {RESULT_COLUMNS}, NULL FROM results r
WHERE r.job_id = ? AND r.request_id > ?{{where}} ORDER BY r.request_id LIMIT ?
"""
_READ_RESULTS_WITH_BODIES = f"""
SELECT {RESULT_COLUMNS}, b.data FROM results r LEFT JOIN bodies b ON b.hash = r.body_hash
WHERE r.job_id = ? AND r.request_id > ?{{where}} ORDER BY r.request_id LIMIT ?
"""


def read_results(
    conn: sqlite3.Connection,
    job_id: int,
    after: int,
    limit: int,
    with_bodies: bool,
    where: ResultFilter | None = None,
) -> list[FetchResult]:
    """Up to ``limit`` results with request_id > ``after`` that ``where`` selects, in
    request_id order."""
    params: list[object] = [job_id, after]

    def placeholder(value: object) -> str:
        params.append(value)
        return "?"

    sql = _READ_RESULTS_WITH_BODIES if with_bodies else _READ_RESULTS
    sql = sql.format(where=result_condition(where, placeholder))
    params.append(limit)
    return [result_from_row(row) for row in conn.execute(sql, params)]


_FIND_REQUESTS = f"""
SELECT q.fingerprint, q.id, r.request_id, {RESULT_COLUMNS}, NULL FROM requests q
LEFT JOIN results r ON r.request_id = q.id
WHERE q.job_id = ? AND q.fingerprint IN ({{marks}})
"""
_FIND_CHUNK = 500  # bound parameters per statement, well under SQLite's limit


def find_requests(
    conn: sqlite3.Connection, job_id: int, fingerprints: list[bytes]
) -> dict[bytes, FoundRequest]:
    """The job's requests with these fingerprints, with their results (one snapshot)."""
    found: dict[bytes, FoundRequest] = {}
    with read_snapshot(conn):
        for start in range(0, len(fingerprints), _FIND_CHUNK):
            chunk = fingerprints[start : start + _FIND_CHUNK]
            sql = _FIND_REQUESTS.format(marks=",".join("?" * len(chunk)))
            for row in conn.execute(sql, [job_id, *chunk]):
                result = None if row[2] is None else result_from_row(tuple(row)[3:])
                found[bytes(row[0])] = FoundRequest(id=row[1], result=result)
    return found


_HISTORY = f"""
SELECT {RESULT_COLUMNS}, NULL FROM result_history r INDEXED BY result_history_url
WHERE r.job_id = ? AND r.url = ? ORDER BY r.id DESC
"""


def history(conn: sqlite3.Connection, job_id: int, url: str) -> list[FetchResult]:
    """The results a recrawl replaced for ``url``, newest first."""
    return [result_from_row(row) for row in conn.execute(_HISTORY, (job_id, url))]


def size_bytes(conn: sqlite3.Connection, path: str) -> int:
    """The bytes the store takes on disk: the database file and its write-ahead log."""
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    try:
        wal = os.path.getsize(f"{path}-wal")
    except OSError:
        wal = 0
    return int(pages) * int(page_size) + wal


def get_body(conn: sqlite3.Connection, body_hash: str) -> bytes | None:
    row = conn.execute("SELECT data FROM bodies WHERE hash = ?", (body_hash,)).fetchone()
    return None if row is None else decompress(row[0])


_SUMMARY = """
SELECT r.status / 100, r.error_kind, count(*), sum(r.bytes), min(r.fetched_at),
    max(r.fetched_at), count(r.elapsed_ms)
FROM results r WHERE r.job_id = ? GROUP BY 1, 2
"""
# The k-th smallest elapsed time, k counted from 0: a bounded sort, not a full load.
_NTH_ELAPSED = """
SELECT elapsed_ms FROM results
WHERE job_id = ? AND status IS NOT NULL AND elapsed_ms IS NOT NULL
ORDER BY elapsed_ms LIMIT 1 OFFSET ?
"""


def _percentile(conn: sqlite3.Connection, job_id: int, n: int, percent: int) -> float | None:
    """Nearest-rank percentile: the smallest value with at least ``percent``% at or below it."""
    if n == 0:
        return None
    rank = -(-percent * n // 100)  # ceil without floats
    row = conn.execute(_NTH_ELAPSED, (job_id, max(rank, 1) - 1)).fetchone()
    return None if row is None else float(row[0])


def summary(conn: sqlite3.Connection, job_id: int, *, percentiles: bool = True) -> JobSummary:
    by_status_class: dict[str, int] = {}
    by_error_kind: dict[str, int] = {}
    total_bytes = 0
    first: float | None = None
    last: float | None = None
    timed = 0
    begin_read(conn)
    try:
        job_counts = counts(conn, job_id)
        rejected = counters(conn, job_id)
        for status_class, kind, n, size, lo, hi, n_elapsed in conn.execute(_SUMMARY, (job_id,)):
            if status_class is not None:
                key = f"{status_class}xx"
                by_status_class[key] = by_status_class.get(key, 0) + n
                timed += n_elapsed
            if kind is not None:
                by_error_kind[kind] = by_error_kind.get(kind, 0) + n
            total_bytes += size or 0
            first = lo if first is None or lo < first else first
            last = hi if last is None or hi > last else last
        p50 = _percentile(conn, job_id, timed, 50) if percentiles else None
        p95 = _percentile(conn, job_id, timed, 95) if percentiles else None
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
    return JobSummary(
        counts=job_counts,
        by_status_class=dict(sorted(by_status_class.items())),
        by_error_kind=dict(sorted(by_error_kind.items())),
        bytes=total_bytes,
        p50_ms=p50,
        p95_ms=p95,
        first_fetched_at=first,
        last_fetched_at=last,
        rejected=rejected,
    )
