"""The PostgreSQL store's reads: jobs, frontier counts, robots, workers, results, the summary.

Plain async functions on one ``asyncpg`` connection, each called inside the
transaction its caller opened (see ``shoal.store.postgres.store``); the writes live
in ``writes`` and ``frontier``. ``counts`` and ``summary`` read several tables, so the store
runs them in a REPEATABLE READ transaction, where every statement sees the
same state.
"""

from __future__ import annotations

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
    "counters",
    "counts",
    "find_requests",
    "get_body",
    "get_cookies",
    "get_job",
    "get_robots",
    "history",
    "list_jobs",
    "list_workers",
    "min_open_depth",
    "next_due",
    "read_results",
    "size_bytes",
    "summary",
]

Conn = Any  # an asyncpg.Connection (asyncpg ships no type information)

# -- jobs ---------------------------------------------------------------------

_JOB = "SELECT id, name, mode, created_at, config, desired FROM shoal_jobs"


def _job(row: Any) -> JobInfo:
    return JobInfo(
        id=row[0],
        name=row[1],
        mode=row[2],
        created_at=row[3],
        config=decode_json(row[4]),
        desired=row[5],
    )


async def get_job(conn: Conn, name: str) -> JobInfo | None:
    row = await conn.fetchrow(f"{_JOB} WHERE name = $1", name)
    return None if row is None else _job(row)


async def list_jobs(conn: Conn) -> list[JobInfo]:
    return [_job(row) for row in await conn.fetch(f"{_JOB} ORDER BY id")]


# -- frontier -----------------------------------------------------------------


async def min_open_depth(conn: Conn, job_id: int) -> int | None:
    value = await conn.fetchval(
        "SELECT least("
        f" (SELECT min(depth) FROM shoal_requests WHERE job_id = $1"
        f"  AND state IN ({State.PENDING}, {State.RETRY_WAIT})),"
        f" (SELECT min(depth) FROM shoal_requests WHERE job_id = $1"
        f"  AND state = {State.LEASED}))",
        job_id,
    )
    return None if value is None else int(value)


async def next_due(conn: Conn, job_id: int) -> float | None:
    value = await conn.fetchval(
        "SELECT min(next_at) FROM shoal_requests"
        f" WHERE job_id = $1 AND state IN ({State.PENDING}, {State.RETRY_WAIT})",
        job_id,
    )
    return None if value is None else float(value)


_COUNT_REVISITING = f"""
SELECT count(*), count(s.status) FROM shoal_requests q
JOIN shoal_results s ON s.request_id = q.id
WHERE q.job_id = $1 AND q.revisit IS NOT NULL
    AND q.state IN ({State.PENDING}, {State.LEASED}, {State.RETRY_WAIT})
"""


async def counts(conn: Conn, job_id: int) -> JobCounts:
    by_state = dict(
        await conn.fetch(
            "SELECT state, count(*) FROM shoal_requests WHERE job_id = $1"
            f" AND state IN ({State.PENDING}, {State.LEASED}, {State.RETRY_WAIT})"
            " GROUP BY state",
            job_id,
        )
    )
    finished, done = await conn.fetchrow(
        "SELECT count(*), count(status) FROM shoal_results WHERE job_id = $1", job_id
    )
    # A row a recrawl sent back keeps its result while it is open: not finished.
    open_finished, open_done = await conn.fetchrow(_COUNT_REVISITING, job_id)
    finished -= open_finished
    done -= open_done
    return JobCounts(
        pending=by_state.get(State.PENDING, 0),
        leased=by_state.get(State.LEASED, 0),
        retry_wait=by_state.get(State.RETRY_WAIT, 0),
        done=done,
        failed=finished - done,
    )


async def counters(conn: Conn, job_id: int) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT name, n FROM shoal_counters WHERE job_id = $1 ORDER BY name", job_id
    )
    return {name: n for name, n in rows}


# -- hosts ----------------------------------------------------------------------


async def get_robots(conn: Conn, job_id: int, host: str, now: float) -> str | None:
    value = await conn.fetchval(
        "SELECT robots FROM shoal_hosts WHERE job_id = $1 AND host = $2 AND robots_expires > $3",
        job_id,
        host,
        now,
    )
    return None if value is None else str(value)


# -- workers --------------------------------------------------------------------


async def list_workers(conn: Conn, job_id: int) -> list[WorkerInfo]:
    rows = await conn.fetch(
        "SELECT owner, pid, hostname, started_at, heartbeat_at FROM shoal_workers"
        " WHERE job_id = $1 ORDER BY started_at, owner",
        job_id,
    )
    return workers_from_rows(rows)


# -- results --------------------------------------------------------------------

_READ_RESULTS = f"""
SELECT {RESULT_COLUMNS}, NULL::bytea FROM shoal_results r
WHERE r.job_id = $1 AND r.request_id > $2{{where}} ORDER BY r.request_id LIMIT $3
"""
_READ_RESULTS_WITH_BODIES = f"""
SELECT {RESULT_COLUMNS}, b.data FROM shoal_results r
LEFT JOIN shoal_bodies b ON b.hash = r.body_hash
WHERE r.job_id = $1 AND r.request_id > $2{{where}} ORDER BY r.request_id LIMIT $3
"""


async def read_results(
    conn: Conn,
    job_id: int,
    after: int,
    limit: int,
    with_bodies: bool,
    where: ResultFilter | None = None,
) -> list[FetchResult]:
    """Up to ``limit`` results with request_id > ``after`` that ``where`` selects, in
    request_id order."""
    params: list[object] = [job_id, after, limit]

    def placeholder(value: object) -> str:
        params.append(value)
        return f"${len(params)}"

    sql = _READ_RESULTS_WITH_BODIES if with_bodies else _READ_RESULTS
    sql = sql.format(where=result_condition(where, placeholder))
    return [result_from_row(row) for row in await conn.fetch(sql, *params)]


_FIND_REQUESTS = f"""
SELECT q.fingerprint, q.id, r.request_id, {RESULT_COLUMNS}, NULL::bytea FROM shoal_requests q
LEFT JOIN shoal_results r ON r.request_id = q.id
WHERE q.job_id = $1 AND q.fingerprint = ANY($2::bytea[])
"""


async def find_requests(
    conn: Conn, job_id: int, fingerprints: list[bytes]
) -> dict[bytes, FoundRequest]:
    """The job's requests with these fingerprints, with their results."""
    found: dict[bytes, FoundRequest] = {}
    for row in await conn.fetch(_FIND_REQUESTS, job_id, fingerprints):
        result = None if row[2] is None else result_from_row(tuple(row)[3:])
        found[bytes(row[0])] = FoundRequest(id=row[1], result=result)
    return found


_HISTORY = f"""
SELECT {RESULT_COLUMNS}, NULL::bytea FROM shoal_result_history r
WHERE r.job_id = $1 AND r.url = $2 ORDER BY r.id DESC
"""


async def history(conn: Conn, job_id: int, url: str) -> list[FetchResult]:
    """The results a recrawl replaced for ``url``, newest first."""
    return [result_from_row(row) for row in await conn.fetch(_HISTORY, job_id, url)]


# Every table of the schema (shoal_ prefixed, in the store's search path), indexes and
# TOAST included.
_SIZE = """
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
WHERE c.relkind = 'r' AND c.relname LIKE 'shoal\\_%' AND pg_table_is_visible(c.oid)
"""


async def size_bytes(conn: Conn) -> int:
    return int(await conn.fetchval(_SIZE))


async def get_body(conn: Conn, body_hash: str) -> bytes | None:
    data = await conn.fetchval("SELECT data FROM shoal_bodies WHERE hash = $1", body_hash)
    return None if data is None else decompress(data)


_SUMMARY = """
SELECT r.status / 100, r.error_kind, count(*), sum(r.bytes), min(r.fetched_at),
    max(r.fetched_at)
FROM shoal_results r WHERE r.job_id = $1 GROUP BY 1, 2
"""
# Nearest rank, as the SQLite store computes it: percentile_disc is exactly that.
_PERCENTILES = """
SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY elapsed_ms),
    percentile_disc(0.95) WITHIN GROUP (ORDER BY elapsed_ms)
FROM shoal_results WHERE job_id = $1 AND status IS NOT NULL AND elapsed_ms IS NOT NULL
"""


async def summary(conn: Conn, job_id: int, *, percentiles: bool = True) -> JobSummary:
    by_status_class: dict[str, int] = {}
    by_error_kind: dict[str, int] = {}
    total_bytes = 0
    first: float | None = None
    last: float | None = None
    job_counts = await counts(conn, job_id)
    rejected = await counters(conn, job_id)
    for status_class, kind, n, size, lo, hi in await conn.fetch(_SUMMARY, job_id):
        if status_class is not None:
            key = f"{status_class}xx"
            by_status_class[key] = by_status_class.get(key, 0) + n
        if kind is not None:
            by_error_kind[kind] = by_error_kind.get(kind, 0) + n
        total_bytes += int(size or 0)  # sum() of bigint is numeric: a Decimal
        first = lo if first is None or lo < first else first
        last = hi if last is None or hi > last else last
    p50, p95 = await conn.fetchrow(_PERCENTILES, job_id) if percentiles else (None, None)
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


async def get_cookies(conn: Conn, job_id: int) -> str | None:
    data = await conn.fetchval("SELECT data FROM shoal_job_cookies WHERE job_id = $1", job_id)
    return None if data is None else str(data)
