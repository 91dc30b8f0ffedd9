"""What only the SQLite backend has: a file, its schema, its locks, other processes."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import sqlite3
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import shoal.store
from shoal.core.errors import ConfigError, SchemaError, StoreError, StoreUnavailable
from shoal.core.model import Completion, JobCounts, NewRequest
from shoal.store import PostgresStore, SQLiteStore, Store, open_store
from shoal.store.sqlite.schema import APPLICATION_ID, LATEST_VERSION, MIGRATIONS

from .storekit import T0, all_results, lease_all, new_request, new_requests, ok

CHILD = str(Path(__file__).with_name("_store_child.py"))


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def file_at_version(path: Path, version: int) -> sqlite3.Connection:
    """A store file as shoal's schema ``version`` left it, open for the test to fill."""
    conn = raw(path)
    for step in MIGRATIONS[:version]:
        for statement in step:
            conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(version),))
    return conn


@pytest.fixture
def made_store(tmp_path: Path) -> Iterator[Path]:
    """A path holding a store that was created, used a little and closed."""
    path = tmp_path / "made.db"

    async def make() -> None:
        async with SQLiteStore(path) as store:
            job = await store.ensure_job("j", mode="fetch", config={"k": "v"})
            await store.add_requests(job.id, new_requests(3), now=T0)

    asyncio.run(make())
    yield path


# -- opening ------------------------------------------------------------------


async def _open_error(path: Path | str) -> StoreError:
    store = SQLiteStore(path)
    with pytest.raises(StoreError) as caught:
        await store.open()
    await store.close()
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    return caught.value


async def test_missing_directory_is_unavailable(tmp_path: Path) -> None:
    error = await _open_error(tmp_path / "nope" / "store.db")
    assert isinstance(error, StoreUnavailable)
    assert "does not exist" in str(error)


async def test_parent_that_is_a_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").touch()
    error = await _open_error(tmp_path / "file" / "store.db")
    assert isinstance(error, StoreUnavailable)


async def test_a_directory_is_unavailable(tmp_path: Path) -> None:
    error = await _open_error(tmp_path)
    assert isinstance(error, StoreUnavailable)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="needs POSIX permissions and a user they apply to (not root)",
)
async def test_unwritable_directory_is_unavailable(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    try:
        error = await _open_error(locked / "store.db")
        assert isinstance(error, StoreUnavailable)
        assert "not writable" in str(error)
    finally:
        locked.chmod(0o700)


async def test_a_file_sqlite_cannot_create_is_unavailable(tmp_path: Path) -> None:
    dangling = tmp_path / "store.db"
    dangling.symlink_to(tmp_path / "missing" / "target.db")
    error = await _open_error(dangling)
    assert isinstance(error, StoreUnavailable)


async def test_garbage_is_not_a_shoal_store(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    content = b"this is a text file, not a database\n" * 200
    path.write_bytes(content)
    error = await _open_error(path)
    assert isinstance(error, SchemaError)
    assert "is not a shoal store" in str(error)
    assert path.read_bytes() == content


async def test_foreign_sqlite_database_is_not_a_shoal_store(tmp_path: Path) -> None:
    path = tmp_path / "foreign.db"
    with raw(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.close()
    before = path.read_bytes()
    error = await _open_error(path)
    assert isinstance(error, SchemaError)
    assert "is not a shoal store" in str(error)
    assert path.read_bytes() == before  # not even switched to WAL


async def test_newer_schema_is_refused(made_store: Path) -> None:
    conn = raw(made_store)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (LATEST_VERSION + 1,))
    conn.close()
    error = await _open_error(made_store)
    assert isinstance(error, SchemaError)
    assert (
        f"written by a newer shoal (schema {LATEST_VERSION + 1}, this shoal knows {LATEST_VERSION})"
    ) in str(error)


async def test_new_file_gets_the_latest_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    async with SQLiteStore(path):
        conn = raw(path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert int(version[0]) == LATEST_VERSION
        conn.close()


async def test_a_version_2_file_is_migrated_keeping_its_rows(tmp_path: Path) -> None:
    """Version 3 adds ``requests.suspect`` and ``requests.crashes``, 0 for existing rows."""
    path = tmp_path / "v2.db"
    conn = file_at_version(path, 2)
    conn.execute("INSERT INTO jobs (id, name, mode, created_at) VALUES (1, 'j', 'fetch', ?)", (T0,))
    conn.execute("INSERT INTO hosts (job_id, host, next_seq) VALUES (1, 'a.test', 3)")
    insert = (
        "INSERT INTO requests (job_id, fingerprint, url, host, next_at, host_seq, state,"
        " attempts, lease_owner, lease_expires) VALUES (1, ?, ?, 'a.test', ?, ?, ?, ?, ?, ?)"
    )
    conn.execute(insert, (b"p", "https://a.test/p", T0, 0, 0, 0, None, None))
    conn.execute(insert, (b"r", "https://a.test/r", T0, 1, 3, 2, None, None))
    conn.execute(insert, (b"l", "https://a.test/l", T0, 2, 1, 1, "gone", T0 + 1))
    conn.close()

    async with SQLiteStore(path) as store:
        assert await store.counts(1) == JobCounts(pending=1, leased=1, retry_wait=1)
        leased = await lease_all(store, 1, now=T0 + 2)
    assert [(r.url, r.attempts, r.suspect, r.crashes) for r in leased] == [
        ("https://a.test/p", 0, False, 0),
        ("https://a.test/r", 2, False, 0),
        ("https://a.test/l", 1, True, 0),  # taken over from an expired lease
    ]
    conn = raw(path)
    columns = {row[1]: row[4] for row in conn.execute("PRAGMA table_info(requests)")}
    assert (columns["suspect"], columns["crashes"]) == ("0", "0")
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert int(version[0]) == LATEST_VERSION == 7
    conn.close()


async def test_a_version_3_file_is_migrated_keeping_its_jobs(tmp_path: Path) -> None:
    """Version 5 adds ``jobs.desired``, NULL (nothing asked) for existing jobs."""
    path = tmp_path / "v3.db"
    conn = file_at_version(path, 3)
    conn.execute(
        "INSERT INTO jobs (id, name, mode, created_at, config) VALUES (1, 'j', 'crawl', ?, ?)",
        (T0, '{"depth": 2}'),
    )
    conn.close()

    async with SQLiteStore(path) as store:
        job = await store.get_job("j")
        assert job is not None
        assert (job.id, job.mode, job.config, job.desired) == (1, "crawl", {"depth": 2}, None)
        await store.set_desired(job.id, "paused")
    async with SQLiteStore(path) as store:
        assert [j.desired for j in await store.list_jobs()] == ["paused"]
    conn = raw(path)
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert int(version[0]) == LATEST_VERSION == 7
    conn.close()


async def test_a_version_5_file_is_migrated_and_its_results_can_be_recrawled(
    tmp_path: Path,
) -> None:
    """Version 6 adds validators, a row's revisit and the history: a result written before
    has no validators and is asked again with a plain GET, its status and body hash kept."""
    path = tmp_path / "v5.db"
    conn = file_at_version(path, 5)
    conn.execute("INSERT INTO jobs (id, name, mode, created_at) VALUES (1, 'j', 'crawl', ?)", (T0,))
    conn.execute(
        "INSERT INTO requests (id, job_id, fingerprint, url, host, next_at, state)"
        " VALUES (7, 1, x'01', 'https://a.test/', 'a.test', ?, 2)",
        (T0,),
    )
    conn.execute(
        "INSERT INTO results (request_id, job_id, url, status, body_hash, fetched_at, fields)"
        " VALUES (7, 1, 'https://a.test/', 200, 'h0', ?, '{\"t\": 1}')",
        (T0,),
    )
    conn.close()

    async with SQLiteStore(path) as store:
        [before] = await all_results(store, 1)
        assert (before.etag, before.last_modified, before.fields) == (None, None, {"t": 1})
        assert await store.counts(1) == JobCounts(done=1)
        assert await store.revisit(1, keep_history=3, now=T0 + 1) == 1
        assert await store.counts(1) == JobCounts(pending=1)
        [row] = await lease_all(store, 1, now=T0 + 1)
        assert row.revisit is not None and row.revisit.headers() == ()
        assert (row.revisit.status, row.revisit.body_hash) == (200, "h0")
        answer = ok(row, fetched_at=T0 + 1, change="changed", etag='"new"', body_hash="h1")
        await store.complete(1, "w1", Completion(results=[answer]), now=T0 + 1)
        [after] = await all_results(store, 1)
        assert after.etag == '"new"'
        assert [r.body_hash for r in await store.history(1, "https://a.test/")] == ["h0"]
    conn = raw(path)
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert int(version[0]) == LATEST_VERSION == 7
    conn.close()


async def test_a_version_6_schema_is_migrated_keeping_its_workers_and_hosts(
    tmp_path: Path,
) -> None:
    """Version 7 adds a worker's ``settled_at``: a worker registered before has none, and
    its hosts are handed over ``gap`` after the hand-over's ``now``, as before."""
    path = tmp_path / "v6.db"
    conn = file_at_version(path, 6)
    conn.execute("INSERT INTO jobs (id, name, mode, created_at) VALUES (1, 'j', 'crawl', ?)", (T0,))
    conn.executemany(
        "INSERT INTO workers (job_id, owner, pid, hostname, started_at, heartbeat_at)"
        " VALUES (1, ?, 1, 'h', ?, ?)",
        [("a", T0, T0 + 6), ("b", T0, T0 + 6)],
    )
    conn.execute(
        "INSERT INTO hosts (job_id, host, next_seq, owner, owner_expires, owned_since, gap)"
        " VALUES (1, 'a.test', 2, 'a', ?, ?, 2)",
        (T0 + 60, T0),
    )
    conn.executemany(
        "INSERT INTO requests (id, job_id, fingerprint, url, host, next_at, host_seq, state)"
        " VALUES (?, 1, ?, ?, 'a.test', ?, ?, ?)",
        [(1, b"1", "https://a.test/1", T0, 0, 2), (2, b"2", "https://a.test/2", T0, 1, 0)],
    )
    conn.close()

    async with SQLiteStore(path) as store:
        assert await store.lease(1, "a", limit=1, now=T0 + 6, ttl=60, gap=2, quantum=5) == []
        assert await store.lease(1, "b", limit=1, now=T0 + 7.9, ttl=60, gap=2, quantum=5) == []
        [row] = await store.lease(1, "b", limit=1, now=T0 + 8, ttl=60, gap=2, quantum=5)
        assert row.url == "https://a.test/2"
    conn = raw(path)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(workers)")}
    assert "settled_at" in columns
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert int(version[0]) == LATEST_VERSION == 7
    conn.close()


async def test_reopening_keeps_everything(made_store: Path) -> None:
    async with SQLiteStore(made_store) as store:
        job = await store.get_job("j")
        assert job is not None and job.config == {"k": "v"}
        assert await store.counts(job.id) == JobCounts(pending=3)


async def test_a_zero_byte_file_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    async with SQLiteStore(path) as store:
        assert await store.list_jobs() == []


async def test_open_is_idempotent_and_close_ends_use(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    with pytest.raises(StoreError, match="not open"):
        await store.counts(1)
    await asyncio.gather(store.open(), store.open())
    await store.open()
    job = await store.ensure_job("j", mode="fetch", config={})
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="not open"):
        await store.add_requests(job.id, new_requests(1), now=T0)
    with pytest.raises(StoreError, match="not open"):
        await all_results(store, job.id)
    await store.open()  # a closed store can be opened again
    assert await store.get_job("j") == job
    await store.close()


# -- errors while running -------------------------------------------------------


async def test_a_lock_held_too_long_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    async with SQLiteStore(path, busy_timeout=0.05) as store:
        job = await store.ensure_job("j", mode="fetch", config={})
        other = raw(path)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreUnavailable, match="locked") as caught:
                await store.add_requests(job.id, new_requests(2), now=T0)
            assert not isinstance(caught.value, sqlite3.Error)
            assert str(path) in str(caught.value)
            # Readers are not blocked by a writer.
            assert await store.counts(job.id) == JobCounts()
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert await store.add_requests(job.id, new_requests(2), now=T0) == 2


async def test_unserializable_job_config_is_a_config_error(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "s.db") as store:
        with pytest.raises(ConfigError, match="JSON"):
            await store.ensure_job("j", mode="fetch", config={"when": object()})


# -- storage details ------------------------------------------------------------


async def test_identical_bodies_are_stored_once_compressed(tmp_path: Path) -> None:
    path = tmp_path / "bodies.db"
    body = b"<p>same page</p>" * 1000
    async with SQLiteStore(path) as store:
        job = await store.ensure_job("j", mode="fetch", config={})
        await store.add_requests(job.id, new_requests(3), now=T0)
        leased = await lease_all(store, job.id)
        results = [ok(r, body=body, body_hash="same") for r in leased[:2]]
        await store.complete(job.id, "w1", Completion(results=results), now=T0)
        again = [ok(leased[2], body=body, body_hash="same")]
        await store.complete(job.id, "w1", Completion(results=again), now=T0)
        assert [r.body for r in await all_results(store, job.id, with_bodies=True)] == [body] * 3
    conn = raw(path)
    rows = conn.execute("SELECT hash, length(data) FROM bodies").fetchall()
    conn.close()
    assert len(rows) == 1
    assert rows[0][0] == "same" and rows[0][1] < len(body) // 10


async def test_iter_results_leaves_no_thread_behind(store_path: Path) -> None:
    async with SQLiteStore(store_path) as store:
        job = await store.ensure_job("j", mode="fetch", config={})
        await store.add_requests(job.id, new_requests(3), now=T0)
        leased = await lease_all(store, job.id)
        await store.complete(job.id, "w1", Completion(results=[ok(r) for r in leased]), now=T0)
        results = store.iter_results(job.id, batch_size=1)
        await anext(results)
        assert _snapshot_threads() == 1
        await results.aclose()  # type: ignore[attr-defined]
    for _ in range(200):
        if _snapshot_threads() == 0:
            break
        await asyncio.sleep(0.01)
    assert _snapshot_threads() == 0


def _snapshot_threads() -> int:
    return sum(t.name.startswith("shoal-sqlite-snapshot") for t in threading.enumerate())


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


async def test_a_big_write_does_not_block_the_event_loop(store_path: Path) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    async with SQLiteStore(store_path) as store:
        job = await store.ensure_job("j", mode="fetch", config={})
        ticker = asyncio.create_task(tick())
        try:
            await store.add_requests(job.id, new_requests(40_000), now=T0)
        finally:
            ticker.cancel()
    assert ticks >= 3


def _check_admission_bookkeeping(path: Path, job_id: int) -> None:
    """Each host's next_seq is how many requests it admitted, whose sequence numbers are
    exactly 0..n-1; the job's admitted counter is how many it admitted."""
    conn = raw(path)
    try:
        per_host = conn.execute(
            "SELECT host, count(*), count(DISTINCT host_seq), min(host_seq), max(host_seq)"
            " FROM requests WHERE job_id = ? GROUP BY host",
            (job_id,),
        ).fetchall()
        next_seq = dict(
            conn.execute(
                "SELECT host, next_seq FROM hosts WHERE job_id = ? AND next_seq > 0", (job_id,)
            ).fetchall()
        )
        (admitted,) = conn.execute("SELECT admitted FROM jobs WHERE id = ?", (job_id,)).fetchone()
        (total,) = conn.execute(
            "SELECT count(*) FROM requests WHERE job_id = ?", (job_id,)
        ).fetchone()
    finally:
        conn.close()
    assert {host: n for host, n, *_ in per_host} == next_seq
    assert all(n == distinct == top + 1 and low == 0 for _, n, distinct, low, top in per_host)
    assert admitted == total


async def test_admission_is_exact_across_connections_and_big_batches(store_path: Path) -> None:
    """A second store on the file has none of the first one's fingerprints in memory: the
    duplicates are found in the database (over several IN chunks of fingerprints and of
    hosts), and limits set through one connection hold for the other."""

    def spread(keys: range) -> list[NewRequest]:
        return [new_request(i, host=f"h{i % 1500}.test") for i in keys]

    async with SQLiteStore(store_path) as first, SQLiteStore(store_path) as second:
        job = await first.ensure_job("j", mode="crawl", config={})
        assert await first.add_requests(job.id, spread(range(0, 6000, 2)), now=T0) == 3000
        twice = spread(range(5000)) * 2
        assert await second.add_requests(job.id, twice, now=T0) == 2500
        found = Completion(discovered=spread(range(5000, 7000)))
        assert await first.complete(job.id, "w1", found, now=T0) == 1500
        _check_admission_bookkeeping(store_path, job.id)
        # Hosts h0..h999 have admitted 5 requests each, h1000..h1499 four.
        await second.set_limits(job.id, max_pages=None, max_pages_per_host=5)
        assert await first.add_requests(job.id, spread(range(7000, 9000)), now=T0) == 500
        assert await first.counters(job.id) == {"host_page_limit": 1500}
        await second.put_robots(job.id, "h1.test", "{}", expires=T0 + 1)
        _check_admission_bookkeeping(store_path, job.id)
    async with SQLiteStore(store_path) as again:
        assert await again.add_requests(job.id, spread(range(9000, 9100)), now=T0) == 0
        assert await again.counters(job.id) == {"host_page_limit": 1600}
        assert await again.get_robots(job.id, "h1.test", now=T0) == "{}"
        assert (await again.counts(job.id)).pending == 7500
    _check_admission_bookkeeping(store_path, job.id)


# -- several processes on one file ----------------------------------------------


async def test_processes_sharing_a_file_never_lease_a_row_twice(store_path: Path) -> None:
    rows = 3000
    async with SQLiteStore(store_path) as store:
        job = await store.ensure_job("shared", mode="fetch", config={})
        # Spread over hosts: a host is leased by one process at a time (Store.lease).
        spread = [new_request(i, host=f"h{i % 40}.test") for i in range(rows)]
        await store.add_requests(job.id, spread, now=T0)
    children = []
    try:
        async with asyncio.timeout(60):
            for owner in ("p1", "p2", "p3"):
                children.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        CHILD,
                        "lease",
                        str(store_path),
                        owner,
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                    )
                )
            for child in children:
                assert child.stdout is not None
                assert (await child.stdout.readline()).strip() == b"ready"
            for child in children:
                assert child.stdin is not None and child.stdout is not None
                child.stdin.write(b"go\n")
                await child.stdin.drain()
            for child in children:
                assert child.stdout is not None
                assert (await child.stdout.readline()).strip() == b"leased"
            outputs = await asyncio.gather(*(child.communicate(b"go\n") for child in children))
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
    assert [child.returncode for child in children] == [0, 0, 0]
    leased = [json.loads(out) for out, _ in outputs]
    every = [rid for ids in leased for rid in ids]
    assert len(every) == len(set(every)) == rows
    assert all(ids for ids in leased), "each process should have won some rows"
    async with SQLiteStore(store_path) as store:
        assert await store.counts(job.id) == JobCounts(done=rows)
        results = await all_results(store, job.id)
    assert len(results) == rows
    # Politeness across processes: every host was fetched by one process only.
    host_of = {r.request_id: r.url.split("/")[2] for r in results}
    owners = {host_of[rid]: n for n, ids in enumerate(leased) for rid in ids}
    for n, ids in enumerate(leased):
        assert {owners[host_of[rid]] for rid in ids} == {n}


async def test_kill_9_loses_no_committed_transaction(store_path: Path) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, CHILD, "commit", str(store_path), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        async with asyncio.timeout(30):
            assert (await child.stdout.readline()).strip() == b"committed"
    finally:
        child.kill()  # SIGKILL: no cleanup, the -wal file is left as it is
        await child.wait()
    async with SQLiteStore(store_path) as store:
        job = await store.get_job("killed")
        assert job is not None
        assert await store.counts(job.id) == JobCounts(pending=400, leased=100, done=500)
        assert len(await all_results(store, job.id)) == 500


# -- the package's face -----------------------------------------------------------


def test_public_names() -> None:
    assert shoal.store.__all__ == sorted(shoal.store.__all__)
    assert shoal.store.__all__ == ["PostgresStore", "SQLiteStore", "Store", "open_store"]


@pytest.mark.parametrize("backend", [SQLiteStore, PostgresStore])
def test_every_store_matches_the_protocol(backend: type) -> None:
    # Store is its ports together: every method of every port, in one list.
    ports = [cls for cls in Store.__mro__ if cls.__module__ == Store.__module__]
    members = sorted(
        {name for cls in ports for name in vars(cls)} - {"location"},
    )
    members = [name for name in members if not name.startswith("_")]
    assert "iter_results" in members
    for name in members:
        expected = inspect.signature(getattr(Store, name))
        actual = inspect.signature(getattr(backend, name))
        assert list(actual.parameters) == list(expected.parameters), name
        for param in expected.parameters.values():
            assert actual.parameters[param.name].kind == param.kind, (name, param.name)
            assert actual.parameters[param.name].default == param.default, (name, param.name)
    assert isinstance(backend.location, property)


@pytest.mark.parametrize(
    ("location", "path"),
    [
        ("crawl.db", "crawl.db"),
        ("runs/crawl.db", "runs/crawl.db"),
        ("/var/tmp/crawl.db", "/var/tmp/crawl.db"),
        ("sqlite:///crawl.db", "crawl.db"),
        ("sqlite:////var/tmp/crawl.db", "/var/tmp/crawl.db"),
    ],
)
def test_open_store_sqlite_forms(location: str, path: str) -> None:
    store = open_store(location)
    assert isinstance(store, SQLiteStore)
    assert store.location == path


def test_open_store_expands_the_home_directory() -> None:
    assert not open_store("~/crawl.db").location.startswith("~")


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("mysql://u@db/shoal", "sqlite:///path"),
        ("sqlite://", "sqlite:///path"),
        ("", "sqlite:///path"),
    ],
)
def test_open_store_refuses_other_forms(location: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_store(location)
