"""The SQLite store's writes: plain synchronous functions on one connection.

Each function here runs inside the thread that owns ``conn`` (the writer; see
``shoal.store.sqlite.store``) and is one transaction; the reads live in
``reads``, the frontier's hot writes (lease, complete) in ``frontier``. They
know SQL and the row encodings; they know nothing about threads, the event loop
or error wrapping. Write transactions start
with ``BEGIN IMMEDIATE`` so that two processes sharing the file queue on the
write lock (honouring ``busy_timeout``) instead of failing when a read turns
into a write.

Admission builds plain tuples and hands them to ``executemany`` with constant
SQL strings, which the ``sqlite3`` statement cache keeps prepared.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from shoal.core.lifecycle import State
from shoal.core.model import JobInfo, NewRequest
from shoal.store._admission import Row, first_of_each, request_rows
from shoal.store._admitted import AdmittedFingerprints
from shoal.store._codec import (
    storable,
)
from shoal.store._reopen import reopen_condition
from shoal.store.sqlite.admit import admit
from shoal.store.sqlite.reads import get_job

__all__ = [
    "add_requests",
    "delete_job",
    "ensure_job",
    "heartbeat",
    "put_robots",
    "reopen",
    "revisit",
    "update_job",
    "register_worker",
    "set_limits",
    "text_safe",
    "unregister_worker",
    "write_transaction",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        # Some errors (disk full, I/O) already rolled the transaction back.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# -- jobs -------------------------------------------------------------------


def ensure_job(
    conn: sqlite3.Connection, name: str, mode: str, config_json: str, now: float
) -> JobInfo:
    with write_transaction(conn):
        conn.execute(_INSERT_JOB, (name, mode, now, config_json))
        job = get_job(conn, name)
    assert job is not None, "a job inserted or found in this transaction"
    return job


# A job id is never used twice, even after its job was deleted: a process that still has
# the old job open (and the fingerprints it admitted, see AdmittedFingerprints) must not
# mistake a new job for it. meta's 'last_job_id' remembers the highest id deleted.
_INSERT_JOB = """
INSERT OR IGNORE INTO jobs (id, name, mode, created_at, config) VALUES (
    1 + max(
        coalesce((SELECT max(id) FROM jobs), 0),
        coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'last_job_id'), 0)
    ),
    ?, ?, ?, ?
)
"""
# Bodies are shared by identical pages across jobs: only those no other job refers to go.
_DELETE_JOB_BODIES = """
DELETE FROM bodies
WHERE hash IN (
        SELECT body_hash FROM results WHERE job_id = :job_id
        UNION SELECT body_hash FROM result_history WHERE job_id = :job_id
    )
    AND hash NOT IN (
        SELECT body_hash FROM results WHERE job_id <> :job_id AND body_hash IS NOT NULL
        UNION SELECT body_hash FROM result_history
        WHERE job_id <> :job_id AND body_hash IS NOT NULL
    )
"""
_JOB_TABLES = (
    "results",
    "result_history",
    "requests",
    "hosts",
    "job_counters",
    "workers",
    "job_cookies",
)
_LIVE_WORKER = "SELECT 1 FROM workers WHERE job_id = ? AND heartbeat_at >= ? LIMIT 1"


def delete_job(
    conn: sqlite3.Connection,
    admitted: AdmittedFingerprints,
    job_id: int,
    alive_since: float | None,
) -> bool:
    """Remove the job and every row of it; False (nothing removed) if a worker of the job
    has a heartbeat at or after ``alive_since``."""
    with write_transaction(conn):
        if alive_since is not None:
            if conn.execute(_LIVE_WORKER, (job_id, alive_since)).fetchone() is not None:
                return False
        conn.execute(_DELETE_JOB_BODIES, {"job_id": job_id})
        for table in _JOB_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))  # noqa: S608
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('last_job_id', ?) ON CONFLICT (key)"
            " DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
            (job_id,),
        )
        conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
    admitted.forget(job_id)
    return True


def update_job(conn: sqlite3.Connection, job_id: int, config_json: str) -> None:
    with write_transaction(conn):
        conn.execute("UPDATE jobs SET config = ? WHERE id = ?", (config_json, job_id))


def set_desired(conn: sqlite3.Connection, job_id: int, desired: str | None) -> None:
    with write_transaction(conn):
        conn.execute("UPDATE jobs SET desired = ? WHERE id = ?", (desired, job_id))


def reopen(conn: sqlite3.Connection, job_id: int, which: str, depth: int | None, now: float) -> int:
    condition = reopen_condition(which, depth_placeholder="?" if depth is not None else None)
    params: tuple[object, ...] = (job_id, State.DONE, State.FAILED)
    if depth is not None:
        params += (depth,)
    with write_transaction(conn):
        chosen = [
            (row[0],)
            for row in conn.execute(
                "SELECT r.id FROM requests r JOIN results s ON s.request_id = r.id"
                f" WHERE r.job_id = ? AND r.state IN (?, ?) AND {condition}",
                params,
            )
        ]
        conn.executemany("DELETE FROM results WHERE request_id = ?", chosen)
        conn.executemany(
            "UPDATE requests SET state = ?, attempts = 0, next_at = ?, lease_owner = NULL,"
            " lease_expires = NULL, last_error_kind = NULL, last_error = NULL, suspect = 0,"
            " crashes = 0, revisit = NULL WHERE id = ?",
            [(State.PENDING, now, row_id) for (row_id,) in chosen],
        )
    return len(chosen)


# A recrawl's rows keep their results: each goes back to pending with what its result
# remembers (core.revisit.Revisit), and complete() settles the new answer against it.
_REVISIT = f"""
UPDATE requests SET state = {State.PENDING}, attempts = 0, next_at = :now,
    lease_owner = NULL, lease_expires = NULL, last_error_kind = NULL, last_error = NULL,
    suspect = 0, crashes = 0,
    revisit = (
        SELECT json_array(s.etag, s.last_modified, s.status, s.body_hash, s.error_kind)
        FROM results s
        WHERE s.request_id = requests.id
    )
WHERE id IN (
    SELECT s.request_id FROM results s WHERE s.job_id = :job_id
        AND (:before IS NULL OR s.fetched_at < :before)
) AND state IN ({State.DONE}, {State.FAILED})
"""


def revisit(
    conn: sqlite3.Connection, job_id: int, fetched_before: float | None, keep: int, now: float
) -> int:
    with write_transaction(conn):
        conn.execute("UPDATE jobs SET keep_history = ? WHERE id = ?", (keep, job_id))
        params = {"job_id": job_id, "before": fetched_before, "now": now}
        return conn.execute(_REVISIT, params).rowcount


# -- frontier ---------------------------------------------------------------


def _storable(rows: list[Row]) -> list[Row]:
    """The rows with every string made valid UTF-8 (lone surrogates become U+FFFD)."""
    return [tuple(storable(v) if isinstance(v, str) else v for v in row) for row in rows]


def text_safe(write: Callable[..., T], *tables: list[Row]) -> T:
    """Run ``write(*tables)``; if a string cannot be stored (a lone surrogate, as decoding
    garbage with surrogateescape makes), run it again on cleaned rows. The first attempt's
    transaction has been rolled back by then, so nothing is written twice."""
    try:
        return write(*tables)
    except UnicodeEncodeError:
        log.warning("replaced text SQLite cannot store (lone surrogates) with U+FFFD")
        return write(*(_storable(rows) for rows in tables))


def add_requests(
    conn: sqlite3.Connection,
    admitted: AdmittedFingerprints,
    job_id: int,
    requests: Sequence[NewRequest],
    now: float,
) -> int:
    requests = admitted.unknown(job_id, first_of_each(requests))
    if not requests:
        return 0

    def write(rows: list[Row]) -> tuple[int, list[bytes]]:
        with write_transaction(conn):
            return admit(conn, job_id, rows)

    new, present = text_safe(write, request_rows(job_id, requests, now))
    admitted.remember(job_id, present)
    return new


def set_limits(
    conn: sqlite3.Connection, job_id: int, max_pages: int | None, max_pages_per_host: int | None
) -> None:
    with write_transaction(conn):
        conn.execute(
            "UPDATE jobs SET max_pages = ?, max_pages_per_host = ? WHERE id = ?",
            (max_pages, max_pages_per_host, job_id),
        )


# Due rows in lease order: waiting rows (pending or retry-wait) that are due, merged with
# leased rows whose lease expired, by (depth, host_seq, id), from hosts this owner may fetch
# (see Store.lease). Each arm reads its own partial index (INDEXED BY keeps the plan fixed
# whatever statistics ANALYZE gathers later) and stops after :scan rows, so hosts owned by
# other workers cost a bounded scan, not one through the whole frontier. An expired lease
# means its worker vanished: as in release_leases(crashed=True), the row becomes a suspect
# and counts a crash if it was marked started (SET reads the old state and suspect).
# Steps: LEASE (waiting rows), TAKE_OVER (expired leases).
_PUT_ROBOTS = (
    "INSERT INTO hosts (job_id, host, next_seq, robots, robots_expires) VALUES (?, ?, 0, ?, ?)"
    " ON CONFLICT (job_id, host) DO UPDATE SET"
    " robots = excluded.robots, robots_expires = excluded.robots_expires"
)


def put_robots(conn: sqlite3.Connection, job_id: int, host: str, data: str, expires: float) -> None:
    def write(rows: list[Row]) -> None:
        with write_transaction(conn):
            conn.execute(_PUT_ROBOTS, rows[0])

    text_safe(write, [(job_id, host, data, expires)])


# -- workers ----------------------------------------------------------------


def register_worker(
    conn: sqlite3.Connection, job_id: int, owner: str, pid: int, hostname: str, now: float
) -> None:
    with write_transaction(conn):
        conn.execute(
            "INSERT INTO workers (job_id, owner, pid, hostname, started_at, heartbeat_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, owner) DO UPDATE SET"
            " pid = excluded.pid, hostname = excluded.hostname,"
            " started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at",
            (job_id, owner, pid, hostname, now, now),
        )


def heartbeat(conn: sqlite3.Connection, job_id: int, owner: str, now: float) -> None:
    with write_transaction(conn):
        conn.execute(
            "UPDATE workers SET heartbeat_at = ? WHERE job_id = ? AND owner = ?",
            (now, job_id, owner),
        )


def unregister_worker(conn: sqlite3.Connection, job_id: int, owner: str) -> None:
    with write_transaction(conn):
        conn.execute("DELETE FROM workers WHERE job_id = ? AND owner = ?", (job_id, owner))
