"""The SQLite store's schema, as an ordered list of migration steps.

``MIGRATIONS[i]`` takes a store from schema version ``i`` to ``i + 1``; a
new file is version 0. Steps are only ever appended: a released step is
never edited, because stores written by it exist on users' disks. The
version lives in the ``meta`` table, and the file is marked as a shoal
store by ``PRAGMA application_id`` so a foreign SQLite file is refused
before anything in it is touched.

Schema (version 6; version 1 lacked the host ownership columns, their indexes and
``results.encoding``; version 2 lacked ``requests.suspect`` and ``requests.crashes``;
version 3 lacked ``job_cookies`` and ``results.proxy``; version 4 lacked ``jobs.desired``;
version 5 lacked ``results.etag``, ``results.last_modified``, ``requests.revisit``,
``jobs.keep_history`` and ``result_history``)::

    meta              key → value ('schema_version')
    jobs              id, name UNIQUE, mode, created_at, config (JSON),
                      max_pages, max_pages_per_host (admission limits, NULL: none),
                      admitted (how many requests the job ever admitted; kept exact by
                      admission, so max_pages needs no count(*)),
                      desired (what an operator asked of the job: 'running', 'paused',
                      'cancelled'; NULL: nothing asked; the service resumes 'running' jobs),
                      keep_history (earlier results a recrawl keeps per URL)
    requests          the frontier: one row per admitted request. Besides its lifecycle
                      (state, attempts, next_at, lease_owner, lease_expires) it keeps what
                      tells a URL that kills its worker from one that was merely in a
                      worker's lease window when it died:
                        suspect   0 normal; 1 leased by a worker that stopped, so it may
                                  be the culprit; 2 started carefully (the engine marked it
                                  durably before fetching it)
                        crashes   how many times the process holding the row died (or
                                  its lease expired) while the row was 2
                      and, for a row a recrawl sent back, revisit: what its result
                      remembers, JSON [etag, last_modified, status, body_hash, error_kind] (NULL
                      otherwise); such a row keeps its result while it is open, so
                      counting finished rows by results leaves out those (partial index
                      requests_revisiting: open rows with a revisit)
                      It is indexed by
                        UNIQUE (job_id, fingerprint)           admission dedupe
                        (job_id, depth, host_seq, id,          partial, waiting rows (pending,
                         next_at, state)                       retry-wait): lease order, due
                                                               filter and next_due from the
                                                               index alone
                        (job_id, lease_expires)                partial, leased rows: expiry
                                                               reclaim, renew, release
                        (job_id, host, lease_owner)            partial, leased rows: does a
                                                               worker still hold a host's rows
    hosts             (job_id, host) → per-host state shared by every worker of a job:
                        next_seq         each admitted request takes its host's next
                                         sequence number, so leasing in (depth, host_seq)
                                         order interleaves hosts; equals the number of
                                         requests the host has admitted (max_pages_per_host)
                        robots,          the engine's parsed robots.txt (opaque JSON text)
                        robots_expires   and until when it holds (NULL: none cached)
                        owner,           the worker that may fetch from the host now, and
                        owner_expires,   until when (renewed with its leases); a released
                        owned_since      host keeps its last owner with owner_expires = the
                                         release time
                        next_start,      no new owner starts before next_start, set on
                        gap              handoff to gap (the politeness delay) after the
                                         release time or the owner's settled_at if later
                      A row may exist for robots alone (next_seq 0); writers never lower
                      next_seq. Indexed by (job_id, owner) for a worker's own hosts.
    job_counters      (job_id, name) → n: URLs rejected before admission, by reason (the
                      engine's, e.g. out_of_scope; the store's max_pages, host_page_limit)
    results           request_id INTEGER PRIMARY KEY (so a row never gets two results),
                      indexed by job_id (rowid order = request_id order) for export;
                      etag and last_modified are the response's validators
    result_history    results a recrawl replaced (the same columns, and replaced_at), the
                      last jobs.keep_history per URL; indexed by (request_id, id) and
                      (job_id, url, id)
    bodies            hash PRIMARY KEY → zstd-compressed body, shared by identical bodies
    workers           (job_id, owner) → pid, hostname, started_at, heartbeat_at,
                      settled_at (the now of its last batch that settled rows)
    job_cookies       job_id → data: the job's cookie jar (the engine's, opaque JSON text)

State values are ``shoal.core.lifecycle.State``: 0 pending, 1 leased,
2 done, 3 retry-wait, 4 failed. JSON columns are NULL when empty.
"""

from __future__ import annotations

import logging
import sqlite3

from shoal.core.errors import SchemaError

__all__ = ["APPLICATION_ID", "LATEST_VERSION", "MIGRATIONS", "check_version", "migrate"]

log = logging.getLogger(__name__)

# 'shol': marks the file as a shoal store (SQLite header offset 68).
APPLICATION_ID = 0x73686F6C

_V1 = (
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE jobs (
        id                 INTEGER PRIMARY KEY,
        name               TEXT NOT NULL UNIQUE,
        mode               TEXT NOT NULL,
        created_at         REAL NOT NULL,
        config             TEXT NOT NULL DEFAULT '{}',
        max_pages          INTEGER,
        max_pages_per_host INTEGER,
        admitted           INTEGER NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE TABLE requests (
        id              INTEGER PRIMARY KEY,
        job_id          INTEGER NOT NULL,
        fingerprint     BLOB NOT NULL,
        url             TEXT NOT NULL,
        method          TEXT NOT NULL DEFAULT 'GET',
        headers         TEXT,
        body            BLOB,
        host            TEXT NOT NULL,
        depth           INTEGER NOT NULL DEFAULT 0,
        parent_url      TEXT,
        state           INTEGER NOT NULL DEFAULT 0,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_at         REAL NOT NULL,
        lease_owner     TEXT,
        lease_expires   REAL,
        last_error_kind TEXT,
        last_error      TEXT,
        host_seq        INTEGER NOT NULL DEFAULT 0
    )
    """,
    "CREATE UNIQUE INDEX requests_fingerprint ON requests (job_id, fingerprint)",
    """
    CREATE INDEX requests_waiting ON requests (job_id, depth, host_seq, id, next_at, state)
        WHERE state IN (0, 3)
    """,
    "CREATE INDEX requests_leased ON requests (job_id, lease_expires) WHERE state = 1",
    """
    CREATE TABLE hosts (
        job_id         INTEGER NOT NULL,
        host           TEXT NOT NULL,
        next_seq       INTEGER NOT NULL DEFAULT 0,
        robots         TEXT,
        robots_expires REAL,
        PRIMARY KEY (job_id, host)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE job_counters (
        job_id INTEGER NOT NULL,
        name   TEXT NOT NULL,
        n      INTEGER NOT NULL,
        PRIMARY KEY (job_id, name)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE results (
        request_id   INTEGER PRIMARY KEY,
        job_id       INTEGER NOT NULL,
        url          TEXT NOT NULL,
        final_url    TEXT,
        redirects    TEXT,
        status       INTEGER,
        error_kind   TEXT,
        error        TEXT,
        headers      TEXT,
        content_type TEXT,
        bytes        INTEGER NOT NULL DEFAULT 0,
        body_hash    TEXT,
        attempts     INTEGER NOT NULL DEFAULT 1,
        ttfb_ms      REAL,
        elapsed_ms   REAL,
        fetched_at   REAL NOT NULL,
        depth        INTEGER NOT NULL DEFAULT 0,
        parent_url   TEXT,
        method       TEXT NOT NULL DEFAULT 'GET',
        fields       TEXT
    )
    """,
    "CREATE INDEX results_job ON results (job_id)",
    """
    CREATE TABLE bodies (
        hash TEXT PRIMARY KEY,
        data BLOB NOT NULL
    )
    """,
    """
    CREATE TABLE workers (
        job_id       INTEGER NOT NULL,
        owner        TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        hostname     TEXT NOT NULL,
        started_at   REAL NOT NULL,
        heartbeat_at REAL NOT NULL,
        PRIMARY KEY (job_id, owner)
    )
    """,
)

# Version 2: hosts are owned by one worker at a time (politeness across processes, see
# Store.lease), and results record the text encoding a page was decoded with.
_V2 = (
    "ALTER TABLE hosts ADD COLUMN owner TEXT",
    "ALTER TABLE hosts ADD COLUMN owner_expires REAL",
    "ALTER TABLE hosts ADD COLUMN owned_since REAL",
    "ALTER TABLE hosts ADD COLUMN next_start REAL NOT NULL DEFAULT 0",
    "ALTER TABLE hosts ADD COLUMN gap REAL NOT NULL DEFAULT 0",
    "CREATE INDEX hosts_owner ON hosts (job_id, owner) WHERE owner IS NOT NULL",
    "CREATE INDEX requests_leased_host ON requests (job_id, host, lease_owner) WHERE state = 1",
    "ALTER TABLE results ADD COLUMN encoding TEXT",
)

# Version 3: a worker's death no longer counts as an attempt of every row it held; rows
# remember whether a dead worker held them and how many deaths they were in flight for
# (see Store.mark_started).
_V3 = (
    "ALTER TABLE requests ADD COLUMN suspect INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE requests ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0",
)

# Version 4: a job's cookie jar, so that a resumed crawl keeps its session; the proxy a
# result went through.
_V4 = (
    "CREATE TABLE job_cookies (job_id INTEGER PRIMARY KEY, data TEXT NOT NULL)",
    "ALTER TABLE results ADD COLUMN proxy TEXT",
)

# Version 5: a job remembers what an operator asked of it (run, pause, cancel), so that a
# restarted service resumes the jobs it was running and leaves paused ones alone.
_V5 = ("ALTER TABLE jobs ADD COLUMN desired TEXT",)

# Version 6: recrawls. Results keep their validators; a row sent back by a recrawl keeps
# what its result remembers (JSON [etag, last_modified, status, body_hash, error_kind]); a
# result a recrawl replaced moves to result_history, which keeps the job's last
# keep_history per URL.
_V6 = (
    "ALTER TABLE results ADD COLUMN etag TEXT",
    "ALTER TABLE results ADD COLUMN last_modified TEXT",
    "ALTER TABLE requests ADD COLUMN revisit TEXT",
    # Open rows that still hold their result: what counts() must not take as finished.
    """
    CREATE INDEX requests_revisiting ON requests (job_id)
        WHERE revisit IS NOT NULL AND state IN (0, 1, 3)
    """,
    "ALTER TABLE jobs ADD COLUMN keep_history INTEGER NOT NULL DEFAULT 3",
    """
    CREATE TABLE result_history (
        id            INTEGER PRIMARY KEY,
        replaced_at   REAL NOT NULL,
        request_id    INTEGER NOT NULL,
        job_id        INTEGER NOT NULL,
        url           TEXT NOT NULL,
        final_url     TEXT,
        redirects     TEXT,
        status        INTEGER,
        error_kind    TEXT,
        error         TEXT,
        headers       TEXT,
        content_type  TEXT,
        bytes         INTEGER NOT NULL DEFAULT 0,
        body_hash     TEXT,
        attempts      INTEGER NOT NULL DEFAULT 1,
        ttfb_ms       REAL,
        elapsed_ms    REAL,
        fetched_at    REAL NOT NULL,
        depth         INTEGER NOT NULL DEFAULT 0,
        parent_url    TEXT,
        method        TEXT NOT NULL DEFAULT 'GET',
        fields        TEXT,
        encoding      TEXT,
        proxy         TEXT,
        etag          TEXT,
        last_modified TEXT
    )
    """,
    "CREATE INDEX result_history_request ON result_history (request_id, id)",
    "CREATE INDEX result_history_url ON result_history (job_id, url, id)",
)

# Version 7: a worker remembers when it last wrote a batch that settled rows (complete's
# now): every request it sent for those rows went before then, so a host it hands over or
# releases waits its gap from then at the earliest (see Store.lease).
_V7 = ("ALTER TABLE workers ADD COLUMN settled_at REAL",)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7)
LATEST_VERSION = len(MIGRATIONS)


def check_version(conn: sqlite3.Connection, path: str) -> int:
    """Return the store's schema version (0 for an empty file) without changing anything.

    Raises ``SchemaError`` for a file that is not a shoal store or is newer than this code.
    ``sqlite3.DatabaseError`` for a file that is not SQLite at all is left to the caller.
    """
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables and app_id in (0, APPLICATION_ID):
        return 0
    if app_id != APPLICATION_ID or "meta" not in tables:
        raise SchemaError(f"{path} is not a shoal store (it is another application's database)")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        raise SchemaError(f"{path} is not a shoal store (no valid schema_version)") from None
    if version > LATEST_VERSION:
        raise SchemaError(
            f"{path} was written by a newer shoal "
            f"(schema {version}, this shoal knows {LATEST_VERSION})"
        )
    return version


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the store up to ``LATEST_VERSION`` in one write transaction; return the version.

    The version is read again inside the transaction, so two processes opening a new file
    at once create the schema exactly once.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = check_version(conn, path)
        for step in range(version, LATEST_VERSION):
            for statement in MIGRATIONS[step]:
                conn.execute(statement)
            log.debug("migrated %s to schema %d", path, step + 1)
        if version < LATEST_VERSION:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(LATEST_VERSION),),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return LATEST_VERSION
