"""The PostgreSQL store's schema, as an ordered list of migration steps.

The same tables as the SQLite store (see ``shoal.store.migrations`` for what
each column means), named with a ``shoal_`` prefix so that they can live in a
database (or schema: ``?search_path=crawls`` in the DSN) beside others. Steps
are only ever appended; the version lives in ``shoal_meta``. Migration runs in
one transaction under an advisory lock, so that a fleet of workers starting
at once creates the schema exactly once.

Indexes, all per job:

    shoal_requests  UNIQUE (job_id, fingerprint)                     admission dedupe
                    (job_id, depth, host_seq, id) INCLUDE (next_at)  waiting rows (pending,
                                                                     retry-wait): lease order
                    (job_id, lease_expires)                          leased rows: expiry
                    (job_id, lease_owner, host)                      leased rows: a worker's
                                                                     own (renew, release,
                                                                     host handover)
    shoal_hosts     PRIMARY KEY (job_id, host), (job_id, owner)      a worker's own hosts
    shoal_results   PRIMARY KEY request_id, (job_id, request_id)     export in admission order
"""

from __future__ import annotations

from typing import Final

__all__ = ["LATEST_VERSION", "LOCK_KEY", "MIGRATIONS"]

LOCK_KEY: Final = 0x73686F6C  # 'shol': the advisory lock migrations hold

_V1 = (
    """
    CREATE TABLE shoal_meta (
        key   text PRIMARY KEY,
        value text NOT NULL
    )
    """,
    """
    CREATE TABLE shoal_jobs (
        id                 bigserial PRIMARY KEY,
        name               text NOT NULL UNIQUE,
        mode               text NOT NULL,
        created_at         double precision NOT NULL,
        config             text NOT NULL DEFAULT '{}',
        max_pages          bigint,
        max_pages_per_host bigint,
        admitted           bigint NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE TABLE shoal_requests (
        id              bigserial PRIMARY KEY,
        job_id          bigint NOT NULL,
        fingerprint     bytea NOT NULL,
        url             text NOT NULL,
        method          text NOT NULL DEFAULT 'GET',
        headers         text,
        body            bytea,
        host            text NOT NULL,
        depth           integer NOT NULL DEFAULT 0,
        parent_url      text,
        state           smallint NOT NULL DEFAULT 0,
        attempts        integer NOT NULL DEFAULT 0,
        next_at         double precision NOT NULL,
        lease_owner     text,
        lease_expires   double precision,
        last_error_kind text,
        last_error      text,
        host_seq        bigint NOT NULL DEFAULT 0
    )
    """,
    "CREATE UNIQUE INDEX shoal_requests_fingerprint ON shoal_requests (job_id, fingerprint)",
    """
    CREATE INDEX shoal_requests_waiting ON shoal_requests (job_id, depth, host_seq, id)
        INCLUDE (next_at) WHERE state IN (0, 3)
    """,
    """
    CREATE INDEX shoal_requests_leased ON shoal_requests (job_id, lease_expires)
        WHERE state = 1
    """,
    """
    CREATE INDEX shoal_requests_owner ON shoal_requests (job_id, lease_owner, host)
        WHERE state = 1
    """,
    """
    CREATE TABLE shoal_hosts (
        job_id         bigint NOT NULL,
        host           text NOT NULL,
        next_seq       bigint NOT NULL DEFAULT 0,
        robots         text,
        robots_expires double precision,
        owner          text,
        owner_expires  double precision,
        owned_since    double precision,
        next_start     double precision NOT NULL DEFAULT 0,
        gap            double precision NOT NULL DEFAULT 0,
        PRIMARY KEY (job_id, host)
    )
    """,
    "CREATE INDEX shoal_hosts_owner ON shoal_hosts (job_id, owner) WHERE owner IS NOT NULL",
    """
    CREATE TABLE shoal_counters (
        job_id bigint NOT NULL,
        name   text NOT NULL,
        n      bigint NOT NULL,
        PRIMARY KEY (job_id, name)
    )
    """,
    """
    CREATE TABLE shoal_results (
        request_id   bigint PRIMARY KEY,
        job_id       bigint NOT NULL,
        url          text NOT NULL,
        final_url    text,
        redirects    text,
        status       integer,
        error_kind   text,
        error        text,
        headers      text,
        content_type text,
        bytes        bigint NOT NULL DEFAULT 0,
        body_hash    text,
        attempts     integer NOT NULL DEFAULT 1,
        ttfb_ms      double precision,
        elapsed_ms   double precision,
        fetched_at   double precision NOT NULL,
        depth        integer NOT NULL DEFAULT 0,
        parent_url   text,
        method       text NOT NULL DEFAULT 'GET',
        fields       text,
        encoding     text
    )
    """,
    "CREATE INDEX shoal_results_job ON shoal_results (job_id, request_id)",
    """
    CREATE TABLE shoal_bodies (
        hash text PRIMARY KEY,
        data bytea NOT NULL
    )
    """,
    """
    CREATE TABLE shoal_workers (
        job_id       bigint NOT NULL,
        owner        text NOT NULL,
        pid          integer NOT NULL,
        hostname     text NOT NULL,
        started_at   double precision NOT NULL,
        heartbeat_at double precision NOT NULL,
        PRIMARY KEY (job_id, owner)
    )
    """,
)

# Version 2: rows remember whether a dead worker held them and how many deaths they were
# in flight for, instead of a death counting as an attempt (see Store.mark_started).
_V2 = (
    "ALTER TABLE shoal_requests ADD COLUMN suspect smallint NOT NULL DEFAULT 0",
    "ALTER TABLE shoal_requests ADD COLUMN crashes integer NOT NULL DEFAULT 0",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2)
LATEST_VERSION: Final = len(MIGRATIONS)
