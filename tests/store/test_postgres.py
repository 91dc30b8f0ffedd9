"""What only the PostgreSQL store has: a server to reach, a schema shared by many
processes, concurrent workers on one job, a server that restarts."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import asyncpg
import pytest

from shoal.core.errors import SchemaError, StoreError, StoreUnavailable
from shoal.core.model import Completion, JobCounts, NewRequest
from shoal.store import PostgresStore, open_store
from shoal.store.postgres.schema import LATEST_VERSION, MIGRATIONS
from shoal.testweb.pgcluster import ThrowawayPostgres

from ..conftest import fresh_schema
from .storekit import T0, new_request, ok


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_open_store_picks_postgres_and_hides_the_password() -> None:
    store = open_store("postgresql://crawler:s3cret@127.0.0.1:5/db")
    assert isinstance(store, PostgresStore)
    assert "s3cret" not in store.location
    assert store.location == "postgresql://crawler@127.0.0.1:5/db"


async def test_an_unreachable_server_is_a_clear_store_unavailable() -> None:
    store = PostgresStore(f"postgresql://u:pw@127.0.0.1:{_closed_port()}/db", connect_timeout=5)
    with pytest.raises(StoreUnavailable) as caught:
        await store.open()
    message = str(caught.value)
    assert message.startswith("cannot open store postgresql://u@127.0.0.1:")
    assert "pw" not in message and "\n" not in message


async def test_a_missing_database_is_named(pg_server: str) -> None:
    base = pg_server.rsplit("/", 1)[0]
    with pytest.raises(StoreError, match="no_such_db"):
        await PostgresStore(f"{base}/no_such_db").open()


async def test_a_newer_schema_is_refused(pg_dsn: str) -> None:
    async with PostgresStore(pg_dsn):
        pass
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("UPDATE shoal_meta SET value = '99' WHERE key = 'schema_version'")
    finally:
        await conn.close()
    with pytest.raises(SchemaError, match="newer shoal"):
        await PostgresStore(pg_dsn).open()


async def test_a_version_1_schema_is_migrated_keeping_its_rows(pg_server: str) -> None:
    """Version 2 adds ``suspect`` and ``crashes`` to ``shoal_requests``, 0 for existing rows."""
    async with fresh_schema(pg_server) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction():
                for statement in MIGRATIONS[0]:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO shoal_meta VALUES ('schema_version', '1')")
                await conn.execute(
                    "INSERT INTO shoal_jobs (id, name, mode, created_at) VALUES (1, 'j', 'f', $1)",
                    T0,
                )
                await conn.execute(
                    "INSERT INTO shoal_hosts (job_id, host, next_seq) VALUES (1, 'a.test', 3)"
                )
                await conn.executemany(
                    "INSERT INTO shoal_requests (job_id, fingerprint, url, host, next_at,"
                    " host_seq, state, attempts, lease_owner, lease_expires)"
                    " VALUES (1, $1, $2, 'a.test', $3, $4, $5, $6, $7, $8)",
                    [
                        (b"p", "https://a.test/p", T0, 0, 0, 0, None, None),
                        (b"r", "https://a.test/r", T0, 1, 3, 2, None, None),
                        (b"l", "https://a.test/l", T0, 2, 1, 1, "gone", T0 + 1),
                    ],
                )
        finally:
            await conn.close()

        async with PostgresStore(dsn) as store:
            assert await store.counts(1) == JobCounts(pending=1, leased=1, retry_wait=1)
            leased = await store.lease(1, "w", limit=10, now=T0 + 2, ttl=60)
        assert [(r.url, r.attempts, r.suspect, r.crashes) for r in leased] == [
            ("https://a.test/p", 0, False, 0),
            ("https://a.test/r", 2, False, 0),
            ("https://a.test/l", 1, True, 0),  # taken over from an expired lease
        ]
        conn = await asyncpg.connect(dsn)
        try:
            version = await conn.fetchval(
                "SELECT value FROM shoal_meta WHERE key = 'schema_version'"
            )
            assert int(version) == LATEST_VERSION == 6
        finally:
            await conn.close()


async def test_a_version_2_schema_is_migrated_keeping_its_jobs(pg_server: str) -> None:
    """Version 4 adds ``desired`` to ``shoal_jobs``, NULL (nothing asked) for existing jobs."""
    async with fresh_schema(pg_server) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction():
                for step in MIGRATIONS[:2]:
                    for statement in step:
                        await conn.execute(statement)
                await conn.execute("INSERT INTO shoal_meta VALUES ('schema_version', '2')")
                await conn.execute(
                    "INSERT INTO shoal_jobs (id, name, mode, created_at, config)"
                    " VALUES (1, 'j', 'crawl', $1, '{\"depth\": 2}')",
                    T0,
                )
        finally:
            await conn.close()

        async with PostgresStore(dsn) as store:
            job = await store.get_job("j")
            assert job is not None
            assert (job.id, job.config, job.desired) == (1, {"depth": 2}, None)
            await store.set_desired(job.id, "paused")
        async with PostgresStore(dsn) as store:
            assert [j.desired for j in await store.list_jobs()] == ["paused"]
        conn = await asyncpg.connect(dsn)
        try:
            version = await conn.fetchval(
                "SELECT value FROM shoal_meta WHERE key = 'schema_version'"
            )
            assert int(version) == LATEST_VERSION == 6
        finally:
            await conn.close()


async def test_a_version_4_schema_is_migrated_and_its_results_can_be_recrawled(
    pg_server: str,
) -> None:
    """Version 5 adds validators, a row's revisit and the history: a result written before
    has no validators and is asked again with a plain GET, its status and body hash kept."""
    async with fresh_schema(pg_server) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction():
                for step in MIGRATIONS[:4]:
                    for statement in step:
                        await conn.execute(statement)
                await conn.execute("INSERT INTO shoal_meta VALUES ('schema_version', '4')")
                await conn.execute(
                    "INSERT INTO shoal_jobs (id, name, mode, created_at)"
                    " VALUES (1, 'j', 'crawl', $1)",
                    T0,
                )
                await conn.execute(
                    "INSERT INTO shoal_hosts (job_id, host, next_seq) VALUES (1, 'a.test', 1)"
                )
                await conn.execute(
                    "INSERT INTO shoal_requests"
                    " (id, job_id, fingerprint, url, host, next_at, state)"
                    " VALUES (7, 1, '\\x01', 'https://a.test/', 'a.test', $1, 2)",
                    T0,
                )
                await conn.execute(
                    "INSERT INTO shoal_results (request_id, job_id, url, status, body_hash,"
                    " fetched_at) VALUES (7, 1, 'https://a.test/', 200, 'h0', $1)",
                    T0,
                )
        finally:
            await conn.close()

        async with PostgresStore(dsn) as store:
            [before] = [r async for batch in store.iter_results(1) for r in batch]
            assert (before.etag, before.last_modified, before.status) == (None, None, 200)
            assert await store.counts(1) == JobCounts(done=1)
            assert await store.revisit(1, keep_history=3, now=T0 + 1) == 1
            assert await store.counts(1) == JobCounts(pending=1)
            [row] = await store.lease(1, "w1", limit=10, now=T0 + 1, ttl=60)
            assert row.revisit is not None and row.revisit.headers() == ()
            assert (row.revisit.status, row.revisit.body_hash) == (200, "h0")
            answer = ok(row, fetched_at=T0 + 1, change="changed", etag='"new"', body_hash="h1")
            await store.complete(1, "w1", Completion(results=[answer]), now=T0 + 1)
            [after] = [r async for batch in store.iter_results(1) for r in batch]
            assert after.etag == '"new"'
            assert [r.body_hash for r in await store.history(1, "https://a.test/")] == ["h0"]
        conn = await asyncpg.connect(dsn)
        try:
            version = await conn.fetchval(
                "SELECT value FROM shoal_meta WHERE key = 'schema_version'"
            )
            assert int(version) == LATEST_VERSION == 6
        finally:
            await conn.close()


async def test_many_stores_opening_at_once_create_the_schema_once(pg_dsn: str) -> None:
    stores = [PostgresStore(pg_dsn) for _ in range(6)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        jobs = await asyncio.gather(
            *(s.ensure_job("shared", mode="crawl", config={}) for s in stores)
        )
        assert len({job.id for job in jobs}) == 1
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_concurrent_workers_lease_each_row_once_and_keep_hosts_apart(pg_dsn: str) -> None:
    rows, hosts = 1200, 24
    owners = [f"w{i}" for i in range(4)]
    stores = [PostgresStore(pg_dsn) for _ in owners]
    for s in stores:
        await s.open()
    try:
        job = await stores[0].ensure_job("shared", mode="fetch", config={})
        requests = [new_request(i, host=f"h{i % hosts}.test") for i in range(rows)]
        assert await stores[0].add_requests(job.id, requests, now=T0) == rows
        leased: dict[str, list[tuple[int, str]]] = {owner: [] for owner in owners}

        async def work(store: PostgresStore, owner: str) -> None:
            while True:
                batch = await store.lease(job.id, owner, limit=17, now=T0, ttl=3600)
                if not batch:
                    if (await store.counts(job.id)).open == 0:
                        return
                    await asyncio.sleep(0.005)
                    continue
                leased[owner].extend((r.id, r.host) for r in batch)
                done = Completion(results=[ok(r) for r in batch])
                await store.complete(job.id, owner, done, now=T0)

        async with asyncio.timeout(120):
            await asyncio.gather(*(work(s, o) for s, o in zip(stores, owners, strict=True)))
        every = [rid for got in leased.values() for rid, _ in got]
        assert len(every) == len(set(every)) == rows
        owner_of: dict[str, set[str]] = {}
        for owner, got in leased.items():
            for _, host in got:
                owner_of.setdefault(host, set()).add(owner)
        assert all(len(who) == 1 for who in owner_of.values()), owner_of
        assert await stores[0].counts(job.id) == JobCounts(done=rows)
    finally:
        for s in stores:
            await s.close()


async def test_text_postgres_cannot_hold_is_replaced_not_lost(pg_dsn: str) -> None:
    async with PostgresStore(pg_dsn) as store:
        job = await store.ensure_job("t", mode="fetch", config={})
        odd = NewRequest(
            url="https://a.test/nul\x00and\udcff",
            fingerprint=b"odd",
            host="a.test",
            parent_url="https://a.test/\x00",
        )
        assert await store.add_requests(job.id, [odd], now=T0) == 1
        (leased,) = await store.lease(job.id, "w", limit=5, now=T0, ttl=60)
        assert "\x00" not in leased.url and "\ufffd" in leased.url
        result = ok(leased, error="bad\x00text", headers=(("x-odd", "v\x00\udc80"),))
        await store.complete(job.id, "w", Completion(results=[result]), now=T0)
        assert await store.counts(job.id) == JobCounts(done=1)


async def test_a_restarted_server_fails_calls_then_serves_them_again() -> None:
    with ThrowawayPostgres() as pg:
        async with PostgresStore(pg.dsn) as store:
            job = await store.ensure_job("t", mode="fetch", config={})
            await store.add_requests(job.id, [new_request(1)], now=T0)
            pg.stop_server()
            with pytest.raises(StoreUnavailable):
                await store.counts(job.id)
            pg.start_server()
            # The pool replaces its dead connections; give it a few calls to do so.
            counts = None
            for _ in range(50):
                with contextlib.suppress(StoreUnavailable):
                    counts = await store.counts(job.id)
                    break
                await asyncio.sleep(0.1)
            assert counts == JobCounts(pending=1)
