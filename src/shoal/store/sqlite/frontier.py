"""The SQLite frontier's writes: leasing due rows, completing them in batches, renewing,
releasing and marking leases started.

Like ``writes``, each function runs in the writer thread that owns ``conn`` and is
one transaction. These are the hot paths of a run: they build plain tuples for
``executemany`` with constant SQL strings, which the ``sqlite3`` statement cache
keeps prepared. Every state change is a step of ``shoal.core.lifecycle``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from shoal.core.lifecycle import State, Step, Suspicion, sql_from
from shoal.core.model import Completion, FetchResult, Request
from shoal.core.ports import HOST_QUANTUM, HOST_REGRAB
from shoal.store._admission import Row, first_of_each, request_rows
from shoal.store._admitted import AdmittedFingerprints
from shoal.store._codec import (
    HISTORY_COLUMNS,
    compress,
    encode_fields,
    encode_json,
    request_from_row,
)
from shoal.store.sqlite.admit import ADD_COUNTER, admit
from shoal.store.sqlite.writes import text_safe, write_transaction

__all__ = ["complete", "lease", "mark_started", "release_leases", "renew_leases"]

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
# When this owner's last request to a host may have gone, at the latest: now, or its last
# batch written (complete's now) if later. The caller read now before this transaction, and
# in a fleet a batch whose requests went after it can be written first (see Store.lease).
_LAST_SEND = """max(:now, coalesce(
    (SELECT settled_at FROM workers WHERE job_id = :job_id AND owner = :owner), :now))"""
# Hands over the hosts owned for a quantum that this owner no longer holds any row of.
_HAND_OVER = f"""
UPDATE hosts INDEXED BY hosts_owner
SET owner_expires = :now, next_start = max(next_start, {_LAST_SEND} + gap)
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
    # (A limit of 0 or less never gets here: SQLiteStore.lease answers it at once.)
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
# Every request of the rows a batch settles went before the batch's now: a host this owner
# lets go of waits its gap from then (_LAST_SEND).
_SETTLED = """
UPDATE workers SET settled_at = max(coalesce(settled_at, :now), :now)
WHERE job_id = :job_id AND owner = :owner
"""


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
            if finish_rows or retries or release_rows:
                conn.execute(_SETTLED, {"job_id": job_id, "owner": owner, "now": now})
            if counters:
                conn.executemany(ADD_COUNTER, counters)
            return admit(conn, job_id, discovered)

    discovered = admitted.unknown(job_id, first_of_each(batch.discovered))
    discovered_rows = request_rows(job_id, discovered, now)
    new, present = text_safe(
        write, result_rows, body_rows, retry_rows, discovered_rows, counter_rows
    )
    admitted.remember(job_id, present)
    return new


_RENEW_HOSTS = """
UPDATE hosts INDEXED BY hosts_owner SET owner_expires = :expires
WHERE job_id = :job_id AND owner = :owner AND owner_expires >= :now
"""
# Released hosts may be claimed at once by anyone, the releasing owner included.
_RELEASE_HOSTS = f"""
UPDATE hosts INDEXED BY hosts_owner
SET owner_expires = :now - :regrab, next_start = max(next_start, {_LAST_SEND} + gap)
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
