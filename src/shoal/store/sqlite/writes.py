"""The SQLite store's writes: plain synchronous functions on one connection.

Each function here runs inside the thread that owns ``conn`` (the writer; see
``shoal.store.sqlite.store``) and is one transaction; the reads live in
``_sqlite_reads``. They know SQL and the row encodings; they know nothing
about threads, the event loop or error wrapping. Write transactions start
with ``BEGIN IMMEDIATE`` so that two processes sharing the file queue on the
write lock (honouring ``busy_timeout``) instead of failing when a read turns
into a write.

Hot paths (``add_requests``, ``lease``, ``complete``) build plain tuples and
hand them to ``executemany`` with constant SQL strings, which the ``sqlite3``
statement cache keeps prepared.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from shoal.core.lifecycle import State, Step, Suspicion, sql_from
from shoal.core.model import Completion, FetchResult, JobInfo, NewRequest, Request
from shoal.core.ports import HOST_QUANTUM, HOST_REGRAB
from shoal.store._admission import Row, first_of_each, request_rows
from shoal.store._admitted import AdmittedFingerprints
from shoal.store._codec import (
    HISTORY_COLUMNS,
    compress,
    encode_fields,
    encode_json,
    request_from_row,
    storable,
)
from shoal.store._reopen import reopen_condition
from shoal.store.sqlite.admit import ADD_COUNTER, admit
from shoal.store.sqlite.reads import get_job

__all__ = [
    "add_requests",
    "complete",
    "delete_job",
    "ensure_job",
    "heartbeat",
    "lease",
    "mark_started",
    "put_robots",
    "reopen",
    "revisit",
    "update_job",
    "register_worker",
    "release_leases",
    "renew_leases",
    "set_limits",
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


def _text_safe(write: Callable[..., T], *tables: list[Row]) -> T:
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

    new, present = _text_safe(write, request_rows(job_id, requests, now))
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
_LEASE = f"""
UPDATE requests SET state = {State.LEASED},
    crashes = crashes + (state {sql_from(Step.TAKE_OVER)} AND suspect = {Suspicion.STARTED}),
    suspect = CASE WHEN state {sql_from(Step.TAKE_OVER)} THEN {Suspicion.SUSPECT}
        ELSE suspect END,
    lease_owner = :owner, lease_expires = :expires
WHERE id IN (
    SELECT c.id FROM (
        SELECT id, host, depth, host_seq FROM (
            SELECT id, host, depth, host_seq FROM requests INDEXED BY requests_waiting
            WHERE job_id = :job_id AND state {sql_from(Step.LEASE)}
                AND next_at <= :now AND depth <= :max_depth
            ORDER BY depth, host_seq, id LIMIT :scan
        )
        UNION ALL
        SELECT id, host, depth, host_seq FROM (
            SELECT id, host, depth, host_seq FROM requests INDEXED BY requests_leased
            WHERE job_id = :job_id AND state {sql_from(Step.TAKE_OVER)}
                AND lease_expires < :now AND depth <= :max_depth
            ORDER BY depth, host_seq, id LIMIT :scan
        )
    ) c LEFT JOIN hosts h ON h.job_id = :job_id AND h.host = c.host
    WHERE h.host IS NULL
        OR (h.owner = :owner AND h.owner_expires >= :now AND h.owned_since > :drain_before)
        OR ((h.owner IS NULL OR h.owner_expires < :now) AND h.next_start <= :now
            AND (h.owner IS NOT :owner OR h.owner_expires <= :regrab_before))
    ORDER BY c.depth, c.host_seq, c.id LIMIT :limit
)
RETURNING id, url, host, method, headers, body, depth, parent_url, attempts, host_seq,
    suspect, crashes, revisit
"""
# Claims the leased rows' hosts, or renews them; owned_since restarts only on a new claim.
_CLAIM = """
UPDATE hosts SET owned_since = CASE
        WHEN owner = :owner AND owner_expires >= :now THEN owned_since ELSE :now END,
    owner = :owner, owner_expires = :expires, gap = :gap
WHERE job_id = :job_id AND host = :host
"""
# Hands over the hosts owned for a quantum that this owner no longer holds any row of.
_HAND_OVER = f"""
UPDATE hosts INDEXED BY hosts_owner
SET owner_expires = :now, next_start = max(next_start, :now + gap)
WHERE job_id = :job_id AND owner = :owner AND owner_expires >= :now
    AND owned_since <= :drain_before
    AND NOT EXISTS (
        SELECT 1 FROM requests INDEXED BY requests_leased_host
        WHERE job_id = :job_id AND host = hosts.host AND state = {State.LEASED}
            AND lease_owner = :owner
    )
"""
_OTHER_WORKERS = """
SELECT count(*) FROM workers WHERE job_id = :job_id AND owner <> :owner AND heartbeat_at >= :since
"""

_NO_DEPTH_LIMIT = 2**62
_SCAN = 4  # rows looked at per row wanted, past those of hosts owned by other workers


def lease(
    conn: sqlite3.Connection,
    job_id: int,
    owner: str,
    limit: int,
    now: float,
    ttl: float,
    max_depth: int | None = None,
    gap: float = 0.0,
    quantum: float = HOST_QUANTUM,
) -> list[Request]:
    if limit <= 0:
        return []
    params: dict[str, object] = {
        "owner": owner,
        "expires": now + ttl,
        "job_id": job_id,
        "now": now,
        "limit": limit,
        "scan": limit * _SCAN + 512,
        "max_depth": _NO_DEPTH_LIMIT if max_depth is None else max_depth,
        "regrab_before": now - HOST_REGRAB,
        "drain_before": float("-inf"),
        "gap": gap,
    }
    with write_transaction(conn):
        others = conn.execute(_OTHER_WORKERS, {**params, "since": now - ttl}).fetchone()[0]
        if others:
            params["drain_before"] = now - quantum
            conn.execute(_HAND_OVER, params)
        rows = conn.execute(_LEASE, params).fetchall()
        hosts = {row[2] for row in rows}
        if hosts:
            conn.executemany(_CLAIM, [{**params, "host": host} for host in hosts])
    # RETURNING gives rows in no particular order.
    rows.sort(key=lambda row: (row[6], row[9], row[0]))
    return [request_from_row(row) for row in rows]


# A row never gets a second result: request_id is the results table's primary key. The
# SELECT from requests keeps a result from landing on another job's (or no) request.
_INSERT_RESULT = """
INSERT OR IGNORE INTO results (
    request_id, job_id, url, final_url, redirects, status, error_kind, error, headers,
    content_type, bytes, body_hash, attempts, ttfb_ms, elapsed_ms, fetched_at, depth,
    parent_url, method, fields, encoding, proxy, etag, last_modified
)
SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM requests
WHERE id = ? AND job_id = ?
"""
# A recrawl's answer (FetchResult.change) for a row still open (as _FINISH would take it):
# unchanged keeps the result as it is, only when it was last confirmed and any new
# validators; otherwise the result moves to the history, which keeps the job's last
# keep_history per URL, and the new one is inserted as a first result is.
_STILL_OPEN = f"""EXISTS (
    SELECT 1 FROM requests WHERE id = :rid AND job_id = :job_id
        AND state {sql_from(Step.COMPLETE, Step.LATE_COMPLETE)}
)"""
_KEEP_UNCHANGED = f"""
UPDATE results SET fetched_at = :fetched_at, etag = coalesce(:etag, etag),
    last_modified = coalesce(:last_modified, last_modified)
WHERE request_id = :rid AND job_id = :job_id AND {_STILL_OPEN}
"""
_TO_HISTORY = f"""
INSERT INTO result_history (replaced_at, {HISTORY_COLUMNS})
SELECT :now, {HISTORY_COLUMNS} FROM results
WHERE request_id = :rid AND job_id = :job_id AND {_STILL_OPEN}
"""
_REPLACED = f"DELETE FROM results WHERE request_id = :rid AND job_id = :job_id AND {_STILL_OPEN}"
_TRIM_HISTORY = """
DELETE FROM result_history INDEXED BY result_history_request
WHERE request_id = :rid AND id NOT IN (
    SELECT id FROM result_history INDEXED BY result_history_request
    WHERE request_id = :rid ORDER BY id DESC
    LIMIT (SELECT keep_history FROM jobs WHERE id = :job_id)
)
"""
# Steps: COMPLETE and FAIL (a leased row, whoever holds it), LATE_COMPLETE and LATE_FAIL
# (a row given back meanwhile). ``?`` state is DONE or FAILED.
_FINISH = f"""
UPDATE requests SET state = ?, attempts = ?, lease_owner = NULL, lease_expires = NULL
WHERE id = ? AND job_id = ? AND state {sql_from(Step.COMPLETE, Step.LATE_COMPLETE)}
"""
# Retries and releases only apply to rows the owner still holds: once its lease expired
# and another worker took the row, the late owner's word no longer counts. A retry means the
# process survived the fetch: the row is no longer suspect. A release takes back a mark
# (suspect 2 → 1): the row was not finished, but nothing died. Steps: RETRY, RELEASE.
_RETRY = f"""
UPDATE requests SET state = {State.RETRY_WAIT}, attempts = ?, next_at = ?,
    last_error_kind = ?, last_error = ?, lease_owner = NULL, lease_expires = NULL,
    suspect = {Suspicion.CLEAR}
WHERE id = ? AND job_id = ? AND state {sql_from(Step.RETRY)} AND lease_owner = ?
"""
_RELEASE_STATE = f"CASE WHEN attempts > 0 THEN {State.RETRY_WAIT} ELSE {State.PENDING} END"
_RELEASE = f"""
UPDATE requests SET state = {_RELEASE_STATE}, lease_owner = NULL, lease_expires = NULL,
    suspect = min(suspect, {Suspicion.SUSPECT})
WHERE id = ? AND job_id = ? AND state {sql_from(Step.RELEASE)} AND lease_owner = ?
"""
# :crashed (1 or 0): the owner died, so every row it held is a suspect and each it had
# marked started counts a crash; or it let go of them gracefully, as _RELEASE does.
# Steps: RECLAIM or RELEASE.
_RELEASE_ALL = f"""
UPDATE requests INDEXED BY requests_leased
SET state = {_RELEASE_STATE}, lease_owner = NULL, lease_expires = NULL,
    crashes = crashes + (:crashed AND suspect = {Suspicion.STARTED}),
    suspect = CASE WHEN :crashed THEN {Suspicion.SUSPECT}
        ELSE min(suspect, {Suspicion.SUSPECT}) END
WHERE job_id = :job_id AND state {sql_from(Step.RECLAIM, Step.RELEASE)}
    AND lease_owner = :owner
"""
# Step: MARK_STARTED.
_MARK_STARTED = f"""
UPDATE requests SET suspect = {Suspicion.STARTED}
WHERE id = ? AND job_id = ? AND state {sql_from(Step.MARK_STARTED)} AND lease_owner = ?
    AND lease_expires >= ?
"""
_RENEW = f"""
UPDATE requests INDEXED BY requests_leased SET lease_expires = ?
WHERE job_id = ? AND state = {State.LEASED} AND lease_owner = ?
"""
_INSERT_BODY = "INSERT OR IGNORE INTO bodies (hash, data) VALUES (?, ?)"


def _new_bodies(conn: sqlite3.Connection, results: list[FetchResult]) -> list[tuple[str, bytes]]:
    """Compress the bodies not stored yet. Runs before the write transaction so that the
    write lock is not held while compressing; INSERT OR IGNORE settles any race."""
    seen: set[str] = set()
    rows: list[tuple[str, bytes]] = []
    exists = "SELECT 1 FROM bodies WHERE hash = ?"
    for r in results:
        digest, body = r.body_hash, r.body
        if body is None or digest is None or digest in seen:
            continue
        seen.add(digest)
        if conn.execute(exists, (digest,)).fetchone() is None:
            rows.append((digest, compress(body)))
    return rows


def complete(
    conn: sqlite3.Connection,
    admitted: AdmittedFingerprints,
    job_id: int,
    owner: str,
    batch: Completion,
    now: float,
) -> int:
    enc, enc_fields = encode_json, encode_fields
    done, failed = int(State.DONE), int(State.FAILED)
    result_rows: list[Row] = []
    finish_rows: list[Row] = []
    unchanged: list[dict[str, object]] = []
    replaced: list[dict[str, object]] = []
    for r in batch.results:
        rid = r.request_id
        change = r.change
        if change is not None:
            if change == "unchanged":
                unchanged.append(
                    {
                        "rid": rid,
                        "job_id": job_id,
                        "fetched_at": r.fetched_at,
                        "etag": r.etag,
                        "last_modified": r.last_modified,
                    }
                )
                finish_rows.append((failed if r.status is None else done, r.attempts, rid, job_id))
                continue
            replaced.append({"rid": rid, "job_id": job_id, "now": now})
        result_rows.append(
            (
                rid,
                job_id,
                r.url,
                r.final_url,
                enc(r.redirects) if r.redirects else None,
                r.status,
                r.error_kind,
                r.error,
                enc(r.headers) if r.headers else None,
                r.content_type,
                r.bytes,
                r.body_hash,
                r.attempts,
                r.ttfb_ms,
                r.elapsed_ms,
                r.fetched_at,
                r.depth,
                r.parent_url,
                r.method,
                None if r.fields is None else enc_fields(r.fields),
                r.encoding,
                r.proxy,
                r.etag,
                r.last_modified,
                rid,
                job_id,
            )
        )
        finish_rows.append((failed if r.status is None else done, r.attempts, rid, job_id))
    body_rows: list[Row] = list(_new_bodies(conn, batch.results))
    retry_rows: list[Row] = [
        (u.attempts, u.next_at, u.error_kind, u.error, u.request_id, job_id, owner)
        for u in batch.retries
    ]
    release_rows: list[Row] = [(rid, job_id, owner) for rid in batch.released]
    counter_rows: list[Row] = [(job_id, name, n) for name, n in batch.counters.items() if n]

    def write(
        results: list[Row],
        bodies: list[Row],
        retries: list[Row],
        discovered: list[Row],
        counters: list[Row],
    ) -> tuple[int, list[bytes]]:
        with write_transaction(conn):
            if unchanged:
                conn.executemany(_KEEP_UNCHANGED, unchanged)
            if replaced:
                conn.executemany(_TO_HISTORY, replaced)
                conn.executemany(_REPLACED, replaced)
                conn.executemany(_TRIM_HISTORY, replaced)
            if finish_rows:
                # Results first: the INSERT reads the request row, and a row finished here
                # ignores any retry or release for it later in the same batch.
                conn.executemany(_INSERT_RESULT, results)
                conn.executemany(_FINISH, finish_rows)
            if bodies:
                conn.executemany(_INSERT_BODY, bodies)
            if retries:
                conn.executemany(_RETRY, retries)
            if release_rows:
                conn.executemany(_RELEASE, release_rows)
            if counters:
                conn.executemany(ADD_COUNTER, counters)
            return admit(conn, job_id, discovered)

    discovered = admitted.unknown(job_id, first_of_each(batch.discovered))
    discovered_rows = request_rows(job_id, discovered, now)
    new, present = _text_safe(
        write, result_rows, body_rows, retry_rows, discovered_rows, counter_rows
    )
    admitted.remember(job_id, present)
    return new


_RENEW_HOSTS = """
UPDATE hosts INDEXED BY hosts_owner SET owner_expires = :expires
WHERE job_id = :job_id AND owner = :owner AND owner_expires >= :now
"""
# Released hosts may be claimed at once by anyone, the releasing owner included.
_RELEASE_HOSTS = """
UPDATE hosts INDEXED BY hosts_owner
SET owner_expires = :now - :regrab, next_start = max(next_start, :now + gap)
WHERE job_id = :job_id AND owner = :owner AND owner_expires >= :now - :regrab
"""


def renew_leases(conn: sqlite3.Connection, job_id: int, owner: str, now: float, ttl: float) -> int:
    with write_transaction(conn):
        params = {"expires": now + ttl, "job_id": job_id, "owner": owner, "now": now}
        conn.execute(_RENEW_HOSTS, params)
        return conn.execute(_RENEW, (now + ttl, job_id, owner)).rowcount


def release_leases(
    conn: sqlite3.Connection, job_id: int, owner: str, crashed: bool, now: float
) -> int:
    params = {"crashed": int(crashed), "job_id": job_id, "owner": owner}
    with write_transaction(conn):
        released = conn.execute(_RELEASE_ALL, params).rowcount
        hosts = {"job_id": job_id, "owner": owner, "now": now, "regrab": HOST_REGRAB}
        conn.execute(_RELEASE_HOSTS, hosts)
        return released


def mark_started(
    conn: sqlite3.Connection, job_id: int, owner: str, request_ids: Sequence[int], now: float
) -> int:
    rows = [(rid, job_id, owner, now) for rid in request_ids]
    with write_transaction(conn):
        return conn.executemany(_MARK_STARTED, rows).rowcount


# -- hosts ------------------------------------------------------------------

# A hosts row may not exist yet (robots are fetched before the host's first admission is
# leased, or for a host never admitted): it starts at next_seq 0, and storing robots leaves
# next_seq alone.
_PUT_ROBOTS = (
    "INSERT INTO hosts (job_id, host, next_seq, robots, robots_expires) VALUES (?, ?, 0, ?, ?)"
    " ON CONFLICT (job_id, host) DO UPDATE SET"
    " robots = excluded.robots, robots_expires = excluded.robots_expires"
)


def put_robots(conn: sqlite3.Connection, job_id: int, host: str, data: str, expires: float) -> None:
    def write(rows: list[Row]) -> None:
        with write_transaction(conn):
            conn.execute(_PUT_ROBOTS, rows[0])

    _text_safe(write, [(job_id, host, data, expires)])


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
