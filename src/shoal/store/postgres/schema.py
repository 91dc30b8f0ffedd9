"""The PostgreSQL store's schema, as an ordered list of migration steps, and ``migrate``.

The same tables as the SQLite store (see ``shoal.store.sqlite.schema`` for what
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
    shoal_result_history  (request_id, id), (job_id, url, id)        a recrawl's replaced
                                                                     results: trim, read
    shoal_requests  (job_id) of open rows with a revisit             rows a recrawl asks
                                                                     again: not finished
"""

from __future__ import annotations

import logging
from typing import Any, Final

from shoal.core.errors import SchemaError, StoreError

__all__ = ["LATEST_VERSION", "LOCK_KEY", "MIGRATIONS", "migrate"]

log = logging.getLogger(__name__)

Conn = Any  # an asyncpg.Connection (asyncpg ships no type information)

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

# Version 3: a job's cookie jar, so that a resumed crawl keeps its session; the proxy a
# result went through.
_V3 = (
    "CREATE TABLE shoal_job_cookies (job_id bigint PRIMARY KEY, data text NOT NULL)",
    "ALTER TABLE shoal_results ADD COLUMN proxy text",
)

# Version 4: a job remembers what an operator asked of it (run, pause, cancel), so that a
# restarted service resumes the jobs it was running and leaves paused ones alone.
_V4 = ("ALTER TABLE shoal_jobs ADD COLUMN desired text",)

# Version 5: recrawls (SQLite's version 6): results keep their validators, a row sent back
# by a recrawl keeps what its result remembers, replaced results go to the history.
_V5 = (
    "ALTER TABLE shoal_results ADD COLUMN etag text",
    "ALTER TABLE shoal_results ADD COLUMN last_modified text",
    "ALTER TABLE shoal_requests ADD COLUMN revisit text",
    """
    CREATE INDEX shoal_requests_revisiting ON shoal_requests (job_id)
        WHERE revisit IS NOT NULL AND state IN (0, 1, 3)
    """,
    "ALTER TABLE shoal_jobs ADD COLUMN keep_history integer NOT NULL DEFAULT 3",
    """
    CREATE TABLE shoal_result_history (
        id            bigserial PRIMARY KEY,
        replaced_at   double precision NOT NULL,
        request_id    bigint NOT NULL,
        job_id        bigint NOT NULL,
        url           text NOT NULL,
        final_url     text,
        redirects     text,
        status        integer,
        error_kind    text,
        error         text,
        headers       text,
        content_type  text,
        bytes         bigint NOT NULL DEFAULT 0,
        body_hash     text,
        attempts      integer NOT NULL DEFAULT 1,
        ttfb_ms       double precision,
        elapsed_ms    double precision,
        fetched_at    double precision NOT NULL,
        depth         integer NOT NULL DEFAULT 0,
        parent_url    text,
        method        text NOT NULL DEFAULT 'GET',
        fields        text,
        encoding      text,
        proxy         text,
        etag          text,
        last_modified text
    )
    """,
    "CREATE INDEX shoal_result_history_request ON shoal_result_history (request_id, id)",
    "CREATE INDEX shoal_result_history_url ON shoal_result_history (job_id, url, id)",
)

# Version 6: a worker remembers when it last wrote a batch that settled rows (SQLite's
# version 7; see Store.lease).
_V6 = ("ALTER TABLE shoal_workers ADD COLUMN settled_at double precision",)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5, _V6)
LATEST_VERSION: Final = len(MIGRATIONS)


async def migrate(conn: Conn, where: str) -> None:
    """Bring the store up to ``LATEST_VERSION`` in the caller's transaction, holding the
    advisory lock ``LOCK_KEY``; ``where`` names the database in messages."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
    tables = {
        row[0]
        for row in await conn.fetch(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_name LIKE 'shoal\\_%'"
        )
    }
    version = 0
    if tables:
        if "shoal_meta" not in tables:
            raise SchemaError(f"{where} has shoal_* tables that are not a shoal store")
        value = await conn.fetchval("SELECT value FROM shoal_meta WHERE key = 'schema_version'")
        try:
            version = int(value)
        except (TypeError, ValueError):
            raise SchemaError(f"{where}: no valid shoal schema_version") from None
    if version > LATEST_VERSION:
        raise SchemaError(
            f"{where} was written by a newer shoal "
            f"(schema {version}, this shoal knows {LATEST_VERSION})"
        )
    if version == 0 and await conn.fetchval("SELECT current_schema()") is None:
        raise StoreError(
            f"cannot open store {where}: no schema to create tables in"
            " (does the search_path name an existing schema?)"
        )
    for step in range(version, LATEST_VERSION):
        for statement in MIGRATIONS[step]:
            await conn.execute(statement)
        log.debug("migrated %s to schema %d", where, step + 1)
    if version < LATEST_VERSION:
        await conn.execute(
            "INSERT INTO shoal_meta (key, value) VALUES ('schema_version', $1)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            str(LATEST_VERSION),
        )
