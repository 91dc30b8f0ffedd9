"""Admission to the SQLite frontier: the SQL of exact dedupe, host sequences, limits.

The backend-neutral steps (batch dedupe, request rows, sequencing within the
limits) live in ``_admission``. ``admit`` runs inside the write transaction its
caller holds (``add_requests``, or ``complete`` for discovered links), so what
it reads cannot change before its writes land, even with several processes on
one file::

    no lock           first_of_each ─▶ AdmittedFingerprints.unknown ─▶ request_rows
    BEGIN IMMEDIATE   SELECT the fingerprints the job has already (chunked IN lists)
                      read the job's limits and admitted count, the hosts' next_seq
                      sequence_rows: each new row, in batch order, dropped or sequenced
                      INSERT the rows; bump hosts.next_seq and jobs.admitted; count drops

The exact check costs one index probe per fingerprint the memory did not know
(about a fifth of what inserting a row costs); the INSERT is a plain one, since
a conflict left at that point would be a bug and should fail loudly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import cast

from shoal.store._admission import FINGERPRINT_COLUMN, HOST_COLUMN, Row, sequence_rows

__all__ = ["ADD_COUNTER", "admit"]

ADD_COUNTER = (
    "INSERT INTO job_counters (job_id, name, n) VALUES (?, ?, ?)"
    " ON CONFLICT (job_id, name) DO UPDATE SET n = n + excluded.n"
)
_INSERT = (
    "INSERT INTO requests"
    " (job_id, fingerprint, url, method, headers, body, host, depth, parent_url, next_at,"
    " host_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
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


def admit(conn: sqlite3.Connection, job_id: int, rows: list[Row]) -> tuple[int, list[bytes]]:
    """Insert the rows not in the job yet and within its limits; the caller holds the write
    transaction, and ``rows`` (from ``request_rows``) have distinct fingerprints.

    Returns how many rows were admitted, and the fingerprints now certainly in the job
    (admitted here or before: what ``AdmittedFingerprints`` may remember; a row dropped
    by a limit is not there and may be admitted later, if the limits are raised).

    Each admitted row takes its host's next sequence number (``host_seq``), and the
    limits apply in batch order: see ``sequence_rows``.
    """
    if not rows:
        return 0, []
    fingerprints = [row[FINGERPRINT_COLUMN] for row in rows]
    known = _known(conn, job_id, fingerprints)
    if known:
        rows = [row for row in rows if row[FINGERPRINT_COLUMN] not in known]
        if not rows:
            return 0, cast(list[bytes], fingerprints)
    limits = conn.execute(_GET_LIMITS, (job_id,)).fetchone()
    max_pages, per_host, admitted = (None, None, 0) if limits is None else limits
    hosts = list(dict.fromkeys(row[HOST_COLUMN] for row in rows))
    next_seq = _host_seqs(conn, job_id, hosts)
    room = float("inf") if max_pages is None else max_pages - admitted
    cap = float("inf") if per_host is None else per_host
    sequenced, dropped, over = sequence_rows(rows, next_seq, room, cap)
    remembered = fingerprints
    if dropped:
        hosts = list(dict.fromkeys(row[HOST_COLUMN] for row in sequenced))
        counts = [(job_id, name, n) for name, n in over.items() if n]
        conn.executemany(ADD_COUNTER, counts)
        remembered = [fp for fp in fingerprints if fp not in dropped]
    if sequenced:
        conn.executemany(_INSERT, sequenced)
        conn.executemany(_PUT_HOST_SEQ, [(job_id, host, next_seq[host]) for host in hosts])
        conn.execute(_PUT_ADMITTED, (len(sequenced), job_id))
    return len(sequenced), cast(list[bytes], remembered)
