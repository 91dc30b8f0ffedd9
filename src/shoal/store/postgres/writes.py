"""The PostgreSQL store's writes: admission, jobs removed, reopened and revisited.

Plain async functions on one ``asyncpg`` connection, each called inside the
transaction its caller opened (see ``shoal.store.postgres.store``). Bulk rows travel
as arrays and are unpacked with ``unnest``: one statement and one round trip
per table, whatever the batch size.

Admission (``add_requests``, and the discovered links of ``frontier.complete``)
locks the job's row first, so admissions of one job run one at a time: host
sequence numbers and limits stay exact. Leases and completion are in ``frontier``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shoal.core.lifecycle import State
from shoal.core.model import NewRequest
from shoal.store._admission import FINGERPRINT_COLUMN, HOST_COLUMN, request_rows, sequence_rows
from shoal.store._reopen import reopen_condition
from shoal.store.postgres.text import storable_text

__all__ = [
    "delete_job",
    "heartbeat",
    "put_cookies",
    "put_robots",
    "register_worker",
    "unregister_worker",
    "add_counters",
    "admit",
    "reopen",
    "revisit",
    "rowcount",
]

Conn = Any  # an asyncpg.Connection (asyncpg ships no type information)


# -- admission ----------------------------------------------------------------

_LOCK_JOB = (
    "SELECT max_pages, max_pages_per_host, admitted FROM shoal_jobs WHERE id = $1 FOR UPDATE"
)
_KNOWN = (
    "SELECT fingerprint FROM shoal_requests WHERE job_id = $1 AND fingerprint = ANY($2::bytea[])"
)
_HOST_SEQS = "SELECT host, next_seq FROM shoal_hosts WHERE job_id = $1 AND host = ANY($2::text[])"
_INSERT = """
INSERT INTO shoal_requests
    (job_id, fingerprint, url, method, headers, body, host, depth, parent_url, next_at, host_seq)
SELECT $1, * FROM unnest($2::bytea[], $3::text[], $4::text[], $5::text[], $6::bytea[],
    $7::text[], $8::int[], $9::text[], $10::float8[], $11::bigint[])
"""
# A hosts row may exist for robots alone; the sequence only ever grows.
_PUT_HOST_SEQS = """
INSERT INTO shoal_hosts (job_id, host, next_seq)
SELECT $1, h, s FROM unnest($2::text[], $3::bigint[]) AS t(h, s) ORDER BY h
ON CONFLICT (job_id, host) DO UPDATE
SET next_seq = GREATEST(shoal_hosts.next_seq, excluded.next_seq)
"""
_PUT_ADMITTED = "UPDATE shoal_jobs SET admitted = admitted + $2 WHERE id = $1"
_ADD_COUNTERS = """
INSERT INTO shoal_counters (job_id, name, n)
SELECT $1, name, n FROM unnest($2::text[], $3::bigint[]) AS t(name, n) ORDER BY name
ON CONFLICT (job_id, name) DO UPDATE SET n = shoal_counters.n + excluded.n
"""


# Bodies are shared by identical pages across jobs: only those no other job refers to go.
_DELETE_JOB_BODIES = """
DELETE FROM shoal_bodies b
WHERE b.hash IN (
        SELECT body_hash FROM shoal_results WHERE job_id = $1
        UNION SELECT body_hash FROM shoal_result_history WHERE job_id = $1
    )
    AND NOT EXISTS (
        SELECT 1 FROM shoal_results o WHERE o.body_hash = b.hash AND o.job_id <> $1
    )
    AND NOT EXISTS (
        SELECT 1 FROM shoal_result_history o WHERE o.body_hash = b.hash AND o.job_id <> $1
    )
"""
_JOB_TABLES = (
    "shoal_results",
    "shoal_result_history",
    "shoal_requests",
    "shoal_hosts",
    "shoal_counters",
    "shoal_workers",
    "shoal_job_cookies",
)


async def delete_job(conn: Conn, job_id: int, alive_since: float | None) -> bool:
    """Remove the job and every row of it; False (nothing removed) if a worker of the job
    has a heartbeat at or after ``alive_since``. Job ids come from a sequence: never reused."""
    if alive_since is not None:
        alive = await conn.fetchval(
            "SELECT 1 FROM shoal_workers WHERE job_id = $1 AND heartbeat_at >= $2 LIMIT 1",
            job_id,
            alive_since,
        )
        if alive is not None:
            return False
    await conn.execute(_DELETE_JOB_BODIES, job_id)
    for table in _JOB_TABLES:
        await conn.execute(f"DELETE FROM {table} WHERE job_id = $1", job_id)  # noqa: S608
    await conn.execute("DELETE FROM shoal_jobs WHERE id = $1", job_id)
    return True


async def add_counters(conn: Conn, job_id: int, counters: dict[str, int]) -> None:
    named = sorted((name, n) for name, n in counters.items() if n)
    if named:
        await conn.execute(_ADD_COUNTERS, job_id, [k for k, _ in named], [n for _, n in named])


async def admit(
    conn: Conn, job_id: int, requests: Sequence[NewRequest], now: float
) -> tuple[int, list[bytes]]:
    """Admit ``requests`` (distinct fingerprints) as every backend does (see ``_admission``):
    only new ones, within the job's limits, each with its host's next sequence number. Returns
    how many were admitted and the fingerprints now certainly in the job."""
    if not requests:
        return 0, []
    limits = await conn.fetchrow(_LOCK_JOB, job_id)
    rows = request_rows(job_id, requests, now)
    fingerprints = [r.fingerprint for r in requests]
    known = {rec[0] for rec in await conn.fetch(_KNOWN, job_id, fingerprints)}
    if known:
        rows = [row for row in rows if row[FINGERPRINT_COLUMN] not in known]
        if not rows:
            return 0, fingerprints
    max_pages, per_host, admitted = (None, None, 0) if limits is None else tuple(limits)
    hosts = list(dict.fromkeys(row[HOST_COLUMN] for row in rows))
    next_seq: dict[object, int] = {
        rec[0]: rec[1] for rec in await conn.fetch(_HOST_SEQS, job_id, hosts)
    }
    room = float("inf") if max_pages is None else max_pages - admitted
    cap = float("inf") if per_host is None else per_host
    sequenced, dropped, over = sequence_rows(rows, next_seq, room, cap)
    remembered = fingerprints
    if dropped:
        await add_counters(conn, job_id, over)
        remembered = [fp for fp in fingerprints if fp not in dropped]
    if sequenced:
        columns = list(zip(*sequenced, strict=True))
        await conn.execute(_INSERT, job_id, *(list(col) for col in columns[1:]))
        touched = sorted({str(row[HOST_COLUMN]) for row in sequenced})
        await conn.execute(_PUT_HOST_SEQS, job_id, touched, [next_seq[h] for h in touched])
        await conn.execute(_PUT_ADMITTED, job_id, len(sequenced))
        if _grew_past_a_mark(int(admitted), int(admitted) + len(sequenced)):
            # The planner must know the frontier is big, or it reads a job's rows through
            # the job_id prefix of an index instead of by primary key (40 ms, not 1 ms, to
            # finish a batch of 200). Autovacuum catches up only after a minute or so.
            await conn.execute("ANALYZE shoal_requests")
    return len(sequenced), remembered


def _grew_past_a_mark(before: int, after: int) -> bool:
    """True when a job's admitted count passed 1,000 × 4^k for some k ≥ 0."""
    mark = 1000
    while mark <= after:
        if before < mark:
            return True
        mark *= 4
    return False


# -- lease --------------------------------------------------------------------


# $1 job, $2 now, $3 owner, $4 drain_before, $5 regrab_before: may this owner lease from h?
def rowcount(status: str) -> int:
    """The row count in a command status such as ``UPDATE 3``."""
    return int(status.rsplit(" ", 1)[-1])


async def reopen(conn: Conn, job_id: int, which: str, depth: int | None, now: float) -> int:
    condition = reopen_condition(which, depth_placeholder="$4" if depth is not None else None)
    params: list[Any] = [job_id, [int(State.DONE), int(State.FAILED)], now]
    if depth is not None:
        params.append(depth)
    status = await conn.execute(
        "WITH chosen AS (SELECT r.id FROM shoal_requests r"
        " JOIN shoal_results s ON s.request_id = r.id"
        f" WHERE r.job_id = $1 AND r.state = ANY($2::smallint[]) AND {condition}"
        " FOR UPDATE OF r),"
        " gone AS (DELETE FROM shoal_results WHERE request_id IN (SELECT id FROM chosen))"
        f" UPDATE shoal_requests SET state = {int(State.PENDING)}, attempts = 0, next_at = $3,"
        " lease_owner = NULL, lease_expires = NULL, last_error_kind = NULL, last_error = NULL,"
        " suspect = 0, crashes = 0, revisit = NULL WHERE id IN (SELECT id FROM chosen)",
        *params,
    )
    return rowcount(status)


# A recrawl's rows keep their results (see the SQLite store's writes._REVISIT).
_REVISIT = f"""
WITH chosen AS (
    SELECT r.id,
        json_build_array(s.etag, s.last_modified, s.status, s.body_hash, s.error_kind)::text
            AS memo
    FROM shoal_requests r JOIN shoal_results s ON s.request_id = r.id
    WHERE r.job_id = $1 AND r.state IN ({State.DONE}, {State.FAILED})
        AND ($2::float8 IS NULL OR s.fetched_at < $2::float8)
    ORDER BY r.id FOR UPDATE OF r
)
UPDATE shoal_requests q SET state = {State.PENDING}, attempts = 0, next_at = $3,
    lease_owner = NULL, lease_expires = NULL, last_error_kind = NULL, last_error = NULL,
    suspect = 0, crashes = 0, revisit = chosen.memo
FROM chosen WHERE q.id = chosen.id
"""


async def revisit(
    conn: Conn, job_id: int, fetched_before: float | None, keep: int, now: float
) -> int:
    await conn.execute("UPDATE shoal_jobs SET keep_history = $2 WHERE id = $1", job_id, keep)
    return rowcount(await conn.execute(_REVISIT, job_id, fetched_before, now))


async def put_robots(conn: Conn, job_id: int, host: str, data: str, expires: float) -> None:
    await conn.execute(
        "INSERT INTO shoal_hosts (job_id, host, robots, robots_expires)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (job_id, host) DO UPDATE"
        " SET robots = excluded.robots, robots_expires = excluded.robots_expires",
        job_id,
        storable_text(host),
        storable_text(data),
        expires,
    )


async def put_cookies(conn: Conn, job_id: int, data: str) -> None:
    await conn.execute(
        "INSERT INTO shoal_job_cookies (job_id, data) VALUES ($1, $2)"
        " ON CONFLICT (job_id) DO UPDATE SET data = excluded.data",
        job_id,
        storable_text(data),
    )


async def register_worker(
    conn: Conn, job_id: int, owner: str, pid: int, hostname: str, now: float
) -> None:
    await conn.execute(
        "INSERT INTO shoal_workers"
        " (job_id, owner, pid, hostname, started_at, heartbeat_at)"
        " VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (job_id, owner) DO UPDATE SET"
        " pid = excluded.pid, hostname = excluded.hostname,"
        " started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at",
        job_id,
        owner,
        pid,
        hostname,
        now,
    )


async def heartbeat(conn: Conn, job_id: int, owner: str, now: float) -> None:
    await conn.execute(
        "UPDATE shoal_workers SET heartbeat_at = $3 WHERE job_id = $1 AND owner = $2",
        job_id,
        owner,
        now,
    )


async def unregister_worker(conn: Conn, job_id: int, owner: str) -> None:
    await conn.execute("DELETE FROM shoal_workers WHERE job_id = $1 AND owner = $2", job_id, owner)
