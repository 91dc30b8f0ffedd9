"""The PostgreSQL frontier's writes: leasing due rows, completing them in batches,
renewing, releasing and marking leases started.

Plain async functions on one ``asyncpg`` connection, each called inside the
transaction its caller opened (see ``shoal.store.postgres.store``); every state
change is a step of ``shoal.core.lifecycle``. Concurrency between workers:

- ``lease`` never waits: it locks candidate hosts and rows with
  ``FOR UPDATE SKIP LOCKED`` and re-checks them after locking, so two workers
  never lease the same row or claim the same host;
- ``complete`` touches only rows its worker holds (or finishes a row whose
  lease expired, first result wins), in id order; the links it admits go
  through ``writes.admit``, which locks the job's row.
"""

from __future__ import annotations

from collections.abc import Sequence

from shoal.core.lifecycle import State, Step, Suspicion, sql_from
from shoal.core.model import Completion, FetchResult, NewRequest, Request
from shoal.core.ports import HOST_REGRAB
from shoal.store._codec import HISTORY_COLUMNS, encode_fields, encode_json, request_from_row
from shoal.store.postgres.writes import Conn, add_counters, admit, rowcount

__all__ = ["complete", "lease", "mark_started", "release_leases", "renew_leases"]

_ELIGIBLE = """(
    (h.owner = $3 AND h.owner_expires >= $2 AND h.owned_since > $4)
    OR ((h.owner IS NULL OR h.owner_expires < $2) AND h.next_start <= $2
        AND (h.owner IS DISTINCT FROM $3 OR h.owner_expires <= $5))
)"""
# Due rows in lease order from hosts this owner may lease from (see Store.lease); each arm
# stops after $7 rows, so hosts other workers own cost a bounded scan.
_CANDIDATES = f"""
WITH waiting AS (
    SELECT id, host, depth, host_seq FROM shoal_requests
    WHERE job_id = $1 AND state {sql_from(Step.LEASE)} AND next_at <= $2 AND depth <= $6
    ORDER BY depth, host_seq, id LIMIT $7
), expired AS (
    SELECT id, host, depth, host_seq FROM shoal_requests
    WHERE job_id = $1 AND state {sql_from(Step.TAKE_OVER)} AND lease_expires < $2
        AND depth <= $6
    ORDER BY depth, host_seq, id LIMIT $7
)
SELECT c.id, c.host FROM (SELECT * FROM waiting UNION ALL SELECT * FROM expired) c
LEFT JOIN shoal_hosts h ON h.job_id = $1 AND h.host = c.host
WHERE h.host IS NULL OR {_ELIGIBLE}
ORDER BY c.depth, c.host_seq, c.id LIMIT $8
"""
# Claims (or renews) the candidates' hosts; a host another worker is claiming right now is
# skipped, and the condition is checked again on the locked row.
_CLAIM = f"""
UPDATE shoal_hosts h SET
    owned_since = CASE WHEN h.owner = $3 AND h.owner_expires >= $2 THEN h.owned_since ELSE $2 END,
    owner = $3, owner_expires = $7, gap = $8
WHERE h.job_id = $1 AND h.host IN (
    SELECT host FROM shoal_hosts WHERE job_id = $1 AND host = ANY($6::text[])
    ORDER BY host FOR UPDATE SKIP LOCKED
) AND {_ELIGIBLE}
RETURNING h.host
"""
# A row taken over from an expired lease lost its worker: as in release_leases(crashed=True),
# it becomes a suspect and counts a crash if it was marked started (SET reads the old row).
# Steps: LEASE (waiting rows), TAKE_OVER (expired leases).
_TAKE = f"""
UPDATE shoal_requests r SET state = {State.LEASED},
    crashes = r.crashes
        + (r.state {sql_from(Step.TAKE_OVER)} AND r.suspect = {Suspicion.STARTED})::int,
    suspect = CASE WHEN r.state {sql_from(Step.TAKE_OVER)} THEN {Suspicion.SUSPECT}
        ELSE r.suspect END,
    lease_owner = $2, lease_expires = $3
WHERE r.job_id = $1 AND r.id IN (
    SELECT id FROM shoal_requests WHERE id = ANY($5::bigint[])
        AND ((state {sql_from(Step.LEASE)} AND next_at <= $4)
            OR (state {sql_from(Step.TAKE_OVER)} AND lease_expires < $4))
    ORDER BY id FOR UPDATE SKIP LOCKED
)
RETURNING r.id, r.url, r.host, r.method, r.headers, r.body, r.depth, r.parent_url,
    r.attempts, r.host_seq, r.suspect, r.crashes, r.revisit
"""
_OTHER_WORKERS = """
SELECT EXISTS (
    SELECT 1 FROM shoal_workers WHERE job_id = $1 AND owner <> $2 AND heartbeat_at >= $3
)
"""
# When owner $3's last request to a host may have gone, at the latest: now ($2), or its
# last batch written (complete's now) if later. The caller read now before this
# transaction, and a batch whose requests went after it may have been written since, by
# another connection (see Store.lease). Read in the statement that sees the host's rows
# settled, so that both come from one snapshot.
_LAST_SEND = """GREATEST($2::float8,
    (SELECT w.settled_at FROM shoal_workers w WHERE w.job_id = $1 AND w.owner = $3))"""
# Hands over the hosts owned for a quantum that this owner no longer holds any row of.
_HAND_OVER = f"""
UPDATE shoal_hosts h
SET owner_expires = $2, next_start = GREATEST(h.next_start, {_LAST_SEND} + h.gap)
WHERE h.job_id = $1 AND h.owner = $3 AND h.owner_expires >= $2 AND h.owned_since <= $4
    AND NOT EXISTS (
        SELECT 1 FROM shoal_requests r
        WHERE r.job_id = $1 AND r.lease_owner = $3 AND r.host = h.host
            AND r.state = {State.LEASED}
    )
"""

_NO_DEPTH_LIMIT = 2**31 - 1
_SCAN = 4  # rows looked at per row wanted, past those of hosts owned by other workers


async def lease(
    conn: Conn,
    job_id: int,
    owner: str,
    *,
    limit: int,
    now: float,
    ttl: float,
    max_depth: int | None,
    gap: float,
    quantum: float,
) -> list[Request]:
    drain_before = float("-inf")
    if await conn.fetchval(_OTHER_WORKERS, job_id, owner, now - ttl):
        drain_before = now - quantum
        await conn.execute(_HAND_OVER, job_id, now, owner, drain_before)
    depth = _NO_DEPTH_LIMIT if max_depth is None else max_depth
    head = (job_id, now, owner, drain_before, now - HOST_REGRAB)
    candidates = await conn.fetch(_CANDIDATES, *head, depth, limit * _SCAN + 512, limit)
    if not candidates:
        return []
    hosts = sorted({rec[1] for rec in candidates})
    claimed = {rec[0] for rec in await conn.fetch(_CLAIM, *head, hosts, now + ttl, gap)}
    ids = [rec[0] for rec in candidates if rec[1] in claimed]
    if not ids:
        return []
    rows = await conn.fetch(_TAKE, job_id, owner, now + ttl, now, ids)
    rows = sorted(rows, key=lambda row: (row[6], row[9], row[0]))
    return [request_from_row(row) for row in rows]


# -- completion ---------------------------------------------------------------

# A row never gets a second result (request_id is the primary key); the join keeps a result
# from landing on another job's (or no) request.
_INSERT_RESULTS = """
INSERT INTO shoal_results (
    request_id, job_id, url, final_url, redirects, status, error_kind, error, headers,
    content_type, bytes, body_hash, attempts, ttfb_ms, elapsed_ms, fetched_at, depth,
    parent_url, method, fields, encoding, proxy, etag, last_modified
)
SELECT t.request_id, $1, t.url, t.final_url, t.redirects, t.status, t.error_kind, t.error,
    t.headers, t.content_type, t.bytes, t.body_hash, t.attempts, t.ttfb_ms, t.elapsed_ms,
    t.fetched_at, t.depth, t.parent_url, t.method, t.fields, t.encoding, t.proxy, t.etag,
    t.last_modified
FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[],
    $8::text[], $9::text[], $10::text[], $11::bigint[], $12::text[], $13::int[],
    $14::float8[], $15::float8[], $16::float8[], $17::int[], $18::text[], $19::text[],
    $20::text[], $21::text[], $22::text[], $23::text[], $24::text[])
    AS t(request_id, url, final_url, redirects, status, error_kind, error, headers,
        content_type, bytes, body_hash, attempts, ttfb_ms, elapsed_ms, fetched_at, depth,
        parent_url, method, fields, encoding, proxy, etag, last_modified)
JOIN shoal_requests r ON r.id = t.request_id AND r.job_id = $1
ORDER BY t.request_id
ON CONFLICT (request_id) DO NOTHING
"""
# Steps: COMPLETE and FAIL (a leased row, whoever holds it), LATE_COMPLETE and LATE_FAIL
# (a row given back meanwhile). t.state is DONE or FAILED.
_FINISH = f"""
UPDATE shoal_requests r SET state = t.state, attempts = t.attempts,
    lease_owner = NULL, lease_expires = NULL
FROM unnest($2::bigint[], $3::smallint[], $4::int[]) AS t(id, state, attempts)
WHERE r.id = t.id AND r.job_id = $1
    AND r.state {sql_from(Step.COMPLETE, Step.LATE_COMPLETE)}
"""
# Retries and releases only apply to rows the owner still holds. A retry clears the
# suspicion (the process survived the fetch); a release takes back a mark (suspect 2 → 1).
# Steps: RETRY, RELEASE.
_RETRY = f"""
UPDATE shoal_requests r SET state = {State.RETRY_WAIT}, attempts = t.attempts,
    next_at = t.next_at, last_error_kind = t.kind, last_error = t.error,
    lease_owner = NULL, lease_expires = NULL, suspect = {Suspicion.CLEAR}
FROM unnest($3::bigint[], $4::int[], $5::float8[], $6::text[], $7::text[])
    AS t(id, attempts, next_at, kind, error)
WHERE r.id = t.id AND r.job_id = $1 AND r.state {sql_from(Step.RETRY)}
    AND r.lease_owner = $2
"""
_RELEASE_STATE = f"CASE WHEN attempts > 0 THEN {State.RETRY_WAIT} ELSE {State.PENDING} END"
_RELEASE = f"""
UPDATE shoal_requests SET state = {_RELEASE_STATE}, lease_owner = NULL, lease_expires = NULL,
    suspect = LEAST(suspect, {Suspicion.SUSPECT})
WHERE id = ANY($3::bigint[]) AND job_id = $1 AND state {sql_from(Step.RELEASE)}
    AND lease_owner = $2
"""
# A recrawl's answers (FetchResult.change) for rows still open, as _FINISH takes them:
# unchanged keeps the result and sets when it was last confirmed (and new validators);
# changed or gone moves the result to the history (trimmed to the job's keep_history per
# URL) before the new one is inserted.
_STILL_OPEN = f"""
JOIN shoal_requests q ON q.id = s.request_id AND q.job_id = $1
    AND q.state {sql_from(Step.COMPLETE, Step.LATE_COMPLETE)}
"""
_KEEP_UNCHANGED = f"""
UPDATE shoal_results s SET fetched_at = t.fetched_at, etag = coalesce(t.etag, s.etag),
    last_modified = coalesce(t.last_modified, s.last_modified)
FROM unnest($2::bigint[], $3::float8[], $4::text[], $5::text[])
    AS t(request_id, fetched_at, etag, last_modified),
    shoal_requests q
WHERE s.request_id = t.request_id AND s.job_id = $1 AND q.id = s.request_id
    AND q.state {sql_from(Step.COMPLETE, Step.LATE_COMPLETE)}
"""
_TO_HISTORY = f"""
WITH moved AS (
    DELETE FROM shoal_results WHERE request_id IN (
        SELECT s.request_id FROM shoal_results s {_STILL_OPEN}
        WHERE s.request_id = ANY($2::bigint[]) AND s.job_id = $1
    )
    RETURNING {HISTORY_COLUMNS}
)
INSERT INTO shoal_result_history (replaced_at, {HISTORY_COLUMNS})
SELECT $3, {HISTORY_COLUMNS} FROM moved ORDER BY request_id
"""
_TRIM_HISTORY = """
DELETE FROM shoal_result_history h USING (
    SELECT id, row_number() OVER (PARTITION BY request_id ORDER BY id DESC) AS n
    FROM shoal_result_history WHERE request_id = ANY($2::bigint[])
) ranked
WHERE h.id = ranked.id
    AND ranked.n > (SELECT keep_history FROM shoal_jobs WHERE id = $1)
"""
# Every request of the rows a batch settles went before the batch's now: a host this owner
# lets go of waits its gap from then (_LAST_SEND). Only the owner's own transactions lock
# its workers row.
_SETTLED = """
UPDATE shoal_workers SET settled_at = GREATEST(settled_at, $3::float8)
WHERE job_id = $1 AND owner = $2
"""
_INSERT_BODIES = """
INSERT INTO shoal_bodies (hash, data) SELECT * FROM unnest($1::text[], $2::bytea[])
ON CONFLICT (hash) DO NOTHING
"""


async def complete(
    conn: Conn,
    job_id: int,
    owner: str,
    batch: Completion,
    bodies: list[tuple[str, bytes]],
    discovered: Sequence[NewRequest],
    now: float,
) -> tuple[int, list[bytes]]:
    """Everything ``Store.complete`` does, in the caller's transaction; returns what ``admit``
    returns for the discovered requests."""
    if discovered:
        # Admissions of a job run one at a time: lock the job first, before any row.
        await conn.execute("SELECT 1 FROM shoal_jobs WHERE id = $1 FOR UPDATE", job_id)
    results = sorted(batch.results, key=lambda r: r.request_id)
    unchanged = [r for r in results if r.change == "unchanged"]
    if unchanged:
        await conn.execute(
            _KEEP_UNCHANGED,
            job_id,
            [r.request_id for r in unchanged],
            [r.fetched_at for r in unchanged],
            [r.etag for r in unchanged],
            [r.last_modified for r in unchanged],
        )
        await _finish(conn, job_id, unchanged)
        results = [r for r in results if r.change != "unchanged"]
    replaced = [r.request_id for r in results if r.change is not None]
    if replaced:
        await conn.execute(_TO_HISTORY, job_id, replaced, now)
        await conn.execute(_TRIM_HISTORY, job_id, replaced)
    if results:
        enc, enc_fields = encode_json, encode_fields
        await conn.execute(
            _INSERT_RESULTS,
            job_id,
            [r.request_id for r in results],
            [r.url for r in results],
            [r.final_url for r in results],
            [enc(r.redirects) if r.redirects else None for r in results],
            [r.status for r in results],
            [r.error_kind for r in results],
            [r.error for r in results],
            [enc(r.headers) if r.headers else None for r in results],
            [r.content_type for r in results],
            [r.bytes for r in results],
            [r.body_hash for r in results],
            [r.attempts for r in results],
            [r.ttfb_ms for r in results],
            [r.elapsed_ms for r in results],
            [r.fetched_at for r in results],
            [r.depth for r in results],
            [r.parent_url for r in results],
            [r.method for r in results],
            [None if r.fields is None else enc_fields(r.fields) for r in results],
            [r.encoding for r in results],
            [r.proxy for r in results],
            [r.etag for r in results],
            [r.last_modified for r in results],
        )
        await _finish(conn, job_id, results)
    if bodies:
        await conn.execute(_INSERT_BODIES, [h for h, _ in bodies], [d for _, d in bodies])
    retries = sorted(batch.retries, key=lambda u: u.request_id)
    if retries:
        await conn.execute(
            _RETRY,
            job_id,
            owner,
            [u.request_id for u in retries],
            [u.attempts for u in retries],
            [u.next_at for u in retries],
            [u.error_kind for u in retries],
            [u.error for u in retries],
        )
    if batch.released:
        await conn.execute(_RELEASE, job_id, owner, sorted(batch.released))
    if batch.results or retries or batch.released:
        await conn.execute(_SETTLED, job_id, owner, now)
    await add_counters(conn, job_id, batch.counters)
    return await admit(conn, job_id, discovered, now)


async def _finish(conn: Conn, job_id: int, results: list[FetchResult]) -> None:
    done, failed = int(State.DONE), int(State.FAILED)
    await conn.execute(
        _FINISH,
        job_id,
        [r.request_id for r in results],
        [failed if r.status is None else done for r in results],
        [r.attempts for r in results],
    )


# -- leases and hosts -----------------------------------------------------------

_RENEW = f"""
UPDATE shoal_requests SET lease_expires = $3
WHERE id IN (
    SELECT id FROM shoal_requests
    WHERE job_id = $1 AND lease_owner = $2 AND state = {State.LEASED}
    ORDER BY id FOR UPDATE
)
"""
_RENEW_HOSTS = """
UPDATE shoal_hosts SET owner_expires = $3
WHERE job_id = $1 AND owner = $2 AND owner_expires >= $4
"""
# $3 crashed: the owner died, so every row it held is a suspect and each it had marked
# started counts a crash; or it let go of them gracefully, as _RELEASE does.
# Steps: RECLAIM or RELEASE.
_RELEASE_ALL = f"""
UPDATE shoal_requests
SET state = {_RELEASE_STATE}, lease_owner = NULL, lease_expires = NULL,
    crashes = crashes + ($3::boolean AND suspect = {Suspicion.STARTED})::int,
    suspect = CASE WHEN $3::boolean THEN {Suspicion.SUSPECT}
        ELSE LEAST(suspect, {Suspicion.SUSPECT}) END
WHERE id IN (
    SELECT id FROM shoal_requests
    WHERE job_id = $1 AND lease_owner = $2
        AND state {sql_from(Step.RECLAIM, Step.RELEASE)}
    ORDER BY id FOR UPDATE
)
"""
# Released hosts may be claimed at once by anyone, the releasing owner included; the
# next start waits as on a hand-over.
_RELEASE_HOSTS = f"""
UPDATE shoal_hosts SET owner_expires = $2::float8 - $4::float8,
    next_start = GREATEST(next_start, {_LAST_SEND} + gap)
WHERE job_id = $1 AND owner = $3 AND owner_expires >= $2::float8 - $4::float8
"""


# Step: MARK_STARTED.
_MARK_STARTED = f"""
UPDATE shoal_requests SET suspect = {Suspicion.STARTED}
WHERE job_id = $1 AND id = ANY($3::bigint[]) AND state {sql_from(Step.MARK_STARTED)}
    AND lease_owner = $2
    AND lease_expires >= $4
"""


async def renew_leases(conn: Conn, job_id: int, owner: str, now: float, ttl: float) -> int:
    # Rows before hosts, as complete locks them (its rows, then the hosts its admissions
    # touch): the other way round, a heartbeat and its own worker's batch deadlock, and
    # the loser waits out the server's deadlock_timeout.
    renewed = rowcount(await conn.execute(_RENEW, job_id, owner, now + ttl))
    await conn.execute(_RENEW_HOSTS, job_id, owner, now + ttl, now)
    return renewed


async def release_leases(conn: Conn, job_id: int, owner: str, crashed: bool, now: float) -> int:
    released = rowcount(await conn.execute(_RELEASE_ALL, job_id, owner, crashed))
    await conn.execute(_RELEASE_HOSTS, job_id, now, owner, HOST_REGRAB)
    return released


async def mark_started(
    conn: Conn, job_id: int, owner: str, request_ids: Sequence[int], now: float
) -> int:
    return rowcount(await conn.execute(_MARK_STARTED, job_id, owner, sorted(request_ids), now))
