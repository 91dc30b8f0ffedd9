"""Reading a job's results back from SQLite: export batches, bodies, the summary.

Like ``_sqlite_ops``, plain functions run in the thread that owns ``conn``.
"""

from __future__ import annotations

import sqlite3

from shoal.core.model import FetchResult, JobSummary
from shoal.store._codec import decompress, result_from_row
from shoal.store._sqlite_ops import begin_read, counters, counts

__all__ = ["get_body", "read_results", "summary"]

_RESULT_COLUMNS = """
    r.request_id, r.url, r.final_url, r.redirects, r.status, r.error_kind, r.error, r.headers,
    r.content_type, r.bytes, r.body_hash, r.attempts, r.ttfb_ms, r.elapsed_ms, r.fetched_at,
    r.depth, r.parent_url, r.method, r.fields, r.encoding
"""
_READ_RESULTS = f"""
SELECT {_RESULT_COLUMNS}, NULL FROM results r
WHERE r.job_id = ? AND r.request_id > ? ORDER BY r.request_id LIMIT ?
"""
_READ_RESULTS_WITH_BODIES = f"""
SELECT {_RESULT_COLUMNS}, b.data FROM results r LEFT JOIN bodies b ON b.hash = r.body_hash
WHERE r.job_id = ? AND r.request_id > ? ORDER BY r.request_id LIMIT ?
"""


def read_results(
    conn: sqlite3.Connection, job_id: int, after: int, limit: int, with_bodies: bool
) -> list[FetchResult]:
    """Up to ``limit`` results with request_id > ``after``, in request_id order."""
    sql = _READ_RESULTS_WITH_BODIES if with_bodies else _READ_RESULTS
    return [result_from_row(row) for row in conn.execute(sql, (job_id, after, limit))]


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


def summary(conn: sqlite3.Connection, job_id: int) -> JobSummary:
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
        p50 = _percentile(conn, job_id, timed, 50)
        p95 = _percentile(conn, job_id, timed, 95)
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
