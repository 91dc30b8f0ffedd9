"""Admission, the part every backend shares: batch dedupe, request rows, host sequencing.

Both stores admit new requests (``add_requests``, and ``complete`` for
discovered links) the same way; only the SQL in the middle differs
(``sqlite.admit.admit``, ``postgres.writes.admit``)::

    no lock    first_of_each ─▶ AdmittedFingerprints.unknown ─▶ request_rows
    write tx   drop the rows whose fingerprint the job has already
               read the job's limits and admitted count, the hosts' next_seq
               sequence_rows: each new row, in batch order, dropped over a limit or sequenced
               insert the rows; bump the hosts' next_seq and the job's admitted; count drops

Only rows truly new take a sequence number, so a host's ``next_seq`` is
exactly how many requests the host has admitted and a duplicate never shifts
the round-robin; a job's ``admitted`` is exactly how many it has.
"""

from __future__ import annotations

from collections.abc import Sequence

from shoal.core.errors import ConfigError
from shoal.core.model import NewRequest
from shoal.store._codec import encode_json

__all__ = [
    "FINGERPRINT_COLUMN",
    "HOST_COLUMN",
    "HOST_PAGE_LIMIT",
    "MAX_PAGES",
    "Row",
    "check_limits",
    "first_of_each",
    "request_rows",
    "sequence_rows",
]

Row = tuple[object, ...]

MAX_PAGES = "max_pages"
"""Counter of new URLs dropped because the job had admitted ``max_pages`` already."""
HOST_PAGE_LIMIT = "host_page_limit"
"""Counter of new URLs dropped because their host had admitted ``max_pages_per_host``."""

FINGERPRINT_COLUMN, HOST_COLUMN = 1, 6
"""Where a request row (see ``request_rows``) holds its fingerprint and its host."""


def check_limits(*, max_pages: int | None, max_pages_per_host: int | None) -> None:
    """``Store.set_limits``'s arguments: each a count ≥ 0, or None for no limit."""
    for name, value in (("max_pages", max_pages), ("max_pages_per_host", max_pages_per_host)):
        if value is not None and value < 0:
            raise ConfigError(f"{name} must be ≥ 0 or None, got {value!r}")


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
    """Rows for a backend's ``admit``; built before the write transaction, outside the lock."""
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


def _sequenced(rows: list[Row], next_seq: dict[object, int]) -> list[Row]:
    """Each row with its host's next sequence number appended; ``next_seq`` moves on."""
    get = next_seq.get
    sequenced: list[Row] = []
    append = sequenced.append
    for row in rows:
        host = row[HOST_COLUMN]
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
            dropped.add(row[FINGERPRINT_COLUMN])
            continue
        host = row[HOST_COLUMN]
        seq = get(host, 0)
        if seq >= cap:
            over_host += 1
            dropped.add(row[FINGERPRINT_COLUMN])
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
    ``next_seq`` (host → next number) moves on.

    Each admitted row takes its host's next sequence number (``host_seq``). Leases go
    in (depth, host_seq) order, so the n-th URL of every host comes before the
    (n+1)-th of any: a list sorted by host, or one huge site among small ones, is
    interleaved across hosts instead of filling the lease window with one host that
    politeness then lets fetch only a few at a time.

    Limits apply in batch order: a new row is dropped, and counted under ``max_pages``,
    once the job has admitted ``max_pages``; otherwise it is dropped, and counted under
    ``host_page_limit``, once its host has admitted ``max_pages_per_host``.
    """
    if room == float("inf") and cap == float("inf"):
        return _sequenced(rows, next_seq), set(), {}
    return _sequenced_within(rows, next_seq, room, cap)
