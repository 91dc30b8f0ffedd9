"""Admission to the SQLite frontier: exact dedupe, per-host sequence numbers, limits.

``admit`` runs inside the write transaction its caller holds (``add_requests``,
or ``complete`` for discovered links), so what it reads cannot change before
its writes land, even with several processes on one file::

    no lock           first_of_each ─▶ AdmittedFingerprints.unknown ─▶ request_rows
    BEGIN IMMEDIATE   SELECT the fingerprints the job has already (chunked IN lists)
                      read the job's limits and admitted count, the hosts' next_seq
                      each new row, in batch order: dropped over a limit, else sequenced
                      INSERT the rows; bump hosts.next_seq and jobs.admitted; count drops

Only rows truly new take a sequence number, so ``hosts.next_seq`` is exactly
how many requests the host has admitted and a duplicate never shifts the
round-robin; ``jobs.admitted`` is exactly how many the job has. The exact check
costs one index probe per fingerprint the memory did not know (about a fifth
of what inserting a row costs); the INSERT is a plain one, since a conflict
left at that point would be a bug and should fail loudly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import cast

from shoal.core.model import NewRequest
from shoal.store._codec import encode_json

__all__ = [
    "ADD_COUNTER",
    "HOST_PAGE_LIMIT",
    "MAX_PAGES",
    "admit",
    "first_of_each",
    "request_rows",
    "sequence_rows",
]

Row = tuple[object, ...]

MAX_PAGES = "max_pages"
"""Counter of new URLs dropped because the job had admitted ``max_pages`` already."""
HOST_PAGE_LIMIT = "host_page_limit"
"""Counter of new URLs dropped because their host had admitted ``max_pages_per_host``."""

ADD_COUNTER = (
    "INSERT INTO job_counters (job_id, name, n) VALUES (?, ?, ?)"
    " ON CONFLICT (job_id, name) DO UPDATE SET n = n + excluded.n"
)
_INSERT = (
    "INSERT INTO requests"
    " (job_id, fingerprint, url, method, headers, body, host, depth, parent_url, next_at,"
    " host_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_FINGERPRINT = 1  # indexes in a request row
_HOST = 6
_GET_KNOWN = "SELECT fingerprint FROM requests WHERE job_id = ? AND fingerprint IN ({marks})"
_GET_HOST_SEQ = "SELECT host, next_seq FROM hosts WHERE job_id = ? AND host IN ({marks})"
# A hosts row may already exist for robots alone; the sequence only ever grows.
_PUT_HOST_SEQ = (
    "INSERT INTO hosts (job_id, host, next_seq) VALUES (?, ?, ?)"
    " ON CONFLICT (job_id, host) DO UPDATE SET next_seq = max(next_seq, excluded.next_seq)"
)
_GET_LIMITS = "SELECT max_pages, max_pages_per_host, admitted FROM jobs WHERE id = ?"
_PUT_ADMITTED = "UPDATE jobs SET admitted = admitted + ? WHERE id = ?"

# IN lists are padded to a power of two (repeating a value changes nothing), so at most
# eleven statement shapes per query reach the sqlite3 statement cache, whatever the sizes.
_CHUNK = 1024
_MARKS = {1 << k: ",".join("?" * (1 << k)) for k in range(_CHUNK.bit_length())}


def _chunks(values: list[object]) -> Iterator[tuple[str, list[object]]]:
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        size = 1 << (len(chunk) - 1).bit_length()
        chunk += [chunk[0]] * (size - len(chunk))
        yield _MARKS[size], chunk


def first_of_each(requests: Sequence[NewRequest]) -> Sequence[NewRequest]:
    """``requests`` with each fingerprint once (its first request), in their order."""
    fingerprints = [r.fingerprint for r in requests]
    n = len(fingerprints)
    # Filled back to front, so each fingerprint ends up with its first index.
    first = dict(zip(reversed(fingerprints), range(n - 1, -1, -1), strict=True))
    if len(first) == n:
        return requests
    return [requests[i] for i in sorted(first.values())]


def request_rows(job_id: int, requests: Sequence[NewRequest], now: float) -> list[Row]:
    """Rows for ``admit``; built before the write transaction, outside the lock."""
    enc = encode_json
    return [
        (
            job_id,
            r.fingerprint,
            r.url,
            r.method,
            enc(r.headers) if r.headers else None,
            r.body,
            r.host,
            r.depth,
            r.parent_url,
            now,
        )
        for r in requests
    ]


def _known(conn: sqlite3.Connection, job_id: int, fingerprints: list[object]) -> set[object]:
    known: set[object] = set()
    for marks, chunk in _chunks(fingerprints):
        known.update(fp for (fp,) in conn.execute(_GET_KNOWN.format(marks=marks), (job_id, *chunk)))
    return known


def _host_seqs(conn: sqlite3.Connection, job_id: int, hosts: list[object]) -> dict[object, int]:
    next_seq: dict[object, int] = {}
    for marks, chunk in _chunks(hosts):
        next_seq.update(conn.execute(_GET_HOST_SEQ.format(marks=marks), (job_id, *chunk)))
    return next_seq


def _sequenced(rows: list[Row], next_seq: dict[object, int]) -> list[Row]:
    """Each row with its host's next sequence number appended; ``next_seq`` moves on."""
    get = next_seq.get
    sequenced: list[Row] = []
    append = sequenced.append
    for row in rows:
        host = row[_HOST]
        seq = get(host, 0)
        next_seq[host] = seq + 1
        append((*row, seq))
    return sequenced


def _sequenced_within(
    rows: list[Row], next_seq: dict[object, int], room: float, cap: float
) -> tuple[list[Row], set[object], dict[str, int]]:
    """Like ``_sequenced``, for at most ``room`` rows and ``cap`` per host; also returns
    the fingerprints dropped and how many were dropped under each counter."""
    get = next_seq.get
    sequenced: list[Row] = []
    append = sequenced.append
    dropped: set[object] = set()
    over_job = over_host = 0
    for row in rows:
        if len(sequenced) >= room:
            over_job += 1
            dropped.add(row[_FINGERPRINT])
            continue
        host = row[_HOST]
        seq = get(host, 0)
        if seq >= cap:
            over_host += 1
            dropped.add(row[_FINGERPRINT])
            continue
        next_seq[host] = seq + 1
        append((*row, seq))
    return sequenced, dropped, {MAX_PAGES: over_job, HOST_PAGE_LIMIT: over_host}


def sequence_rows(
    rows: list[Row], next_seq: dict[object, int], room: float, cap: float
) -> tuple[list[Row], set[object], dict[str, int]]:
    """Sequence ``rows`` (new, distinct) within the job's ``room`` and the per-host ``cap``
    (``inf``: no limit); returns the admitted rows (each with its host sequence number
    appended), the fingerprints dropped, and how many were dropped under each counter.
    ``next_seq`` (host → next number) moves on. Shared by every backend's admission."""
    if room == float("inf") and cap == float("inf"):
        return _sequenced(rows, next_seq), set(), {}
    return _sequenced_within(rows, next_seq, room, cap)


def admit(conn: sqlite3.Connection, job_id: int, rows: list[Row]) -> tuple[int, list[bytes]]:
    """Insert the rows not in the job yet and within its limits; the caller holds the write
    transaction, and ``rows`` (from ``request_rows``) have distinct fingerprints.

    Returns how many rows were admitted, and the fingerprints now certainly in the job
    (admitted here or before: what ``AdmittedFingerprints`` may remember; a row dropped
    by a limit is not there and may be admitted later, if the limits are raised).

    Each admitted row takes its host's next sequence number (``host_seq``). Leases go
    in (depth, host_seq) order, so the n-th URL of every host comes before the
    (n+1)-th of any: a list sorted by host, or one huge site among small ones, is
    interleaved across hosts instead of filling the lease window with one host that
    politeness then lets fetch only a few at a time.

    Limits apply in batch order: a new row is dropped, and counted under ``max_pages``,
    once the job has admitted ``max_pages``; otherwise it is dropped, and counted under
    ``host_page_limit``, once its host has admitted ``max_pages_per_host``.
    """
    if not rows:
        return 0, []
    fingerprints = [row[_FINGERPRINT] for row in rows]
    known = _known(conn, job_id, fingerprints)
    if known:
        rows = [row for row in rows if row[_FINGERPRINT] not in known]
        if not rows:
            return 0, cast(list[bytes], fingerprints)
    limits = conn.execute(_GET_LIMITS, (job_id,)).fetchone()
    max_pages, per_host, admitted = (None, None, 0) if limits is None else limits
    hosts = list(dict.fromkeys(row[_HOST] for row in rows))
    next_seq = _host_seqs(conn, job_id, hosts)
    remembered = fingerprints
    if max_pages is None and per_host is None:
        sequenced = _sequenced(rows, next_seq)
    else:
        room = float("inf") if max_pages is None else max_pages - admitted
        cap = float("inf") if per_host is None else per_host
        sequenced, dropped, over = _sequenced_within(rows, next_seq, room, cap)
        if dropped:
            hosts = list(dict.fromkeys(row[_HOST] for row in sequenced))
            counts = [(job_id, name, n) for name, n in over.items() if n]
            conn.executemany(ADD_COUNTER, counts)
            remembered = [fp for fp in fingerprints if fp not in dropped]
    if sequenced:
        conn.executemany(_INSERT, sequenced)
        conn.executemany(_PUT_HOST_SEQ, [(job_id, host, next_seq[host]) for host in hosts])
        conn.execute(_PUT_ADMITTED, (len(sequenced), job_id))
    return len(sequenced), cast(list[bytes], remembered)
