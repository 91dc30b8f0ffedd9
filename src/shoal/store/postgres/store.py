"""The shared store: PostgreSQL through an asyncpg connection pool.

Many worker processes, on many machines, run one job on one database: leases
are taken with ``FOR UPDATE SKIP LOCKED``, a dead worker's leases and hosts
expire, and per-host politeness holds across workers through host ownership
(see ``Store.lease``). Every method is one transaction on a pooled connection;
the write path lives in ``writes`` and ``frontier``, the read path in ``reads``.

Errors: asyncpg and socket exceptions never leave this module. They become
``StoreUnavailable`` when waiting or retrying may help (server unreachable,
restarting, connection lost, too many clients) and ``StoreError`` otherwise,
each one line naming the database (never its password). A transaction that
lost a deadlock or a serialization race is run again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import asyncpg

from shoal.core.errors import ConfigError, StoreError, StoreUnavailable
from shoal.core.filters import ResultFilter
from shoal.core.model import (
    Completion,
    FetchResult,
    FoundRequest,
    HostView,
    JobCounts,
    JobInfo,
    JobSummary,
    NewRequest,
    Request,
    WorkerInfo,
)
from shoal.core.ports import HOST_QUANTUM, Reopen
from shoal.store._admission import check_limits, first_of_each
from shoal.store._admitted import AdmittedFingerprints
from shoal.store._codec import compress, job_config_json
from shoal.store._hosts_view import hosts_from_rows, hosts_query, robots_query
from shoal.store._reopen import check_keep_history
from shoal.store.postgres import frontier, reads
from shoal.store.postgres import writes as ops
from shoal.store.postgres.connections import TEXT_STATES, UnstorableText, redacted, store_error
from shoal.store.postgres.schema import migrate
from shoal.store.postgres.text import clean_completion, clean_request

__all__ = ["PostgresStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Conn = Any  # an asyncpg.Connection

_RACES = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_RACE_RETRIES = 8


class PostgresStore:
    """A ``Store`` on PostgreSQL (``postgresql://user@host:port/db``).

    ``pool_size`` connections at most per process; a fleet of N workers needs
    N × pool_size connections on the server.
    """

    def __init__(self, dsn: str, *, pool_size: int = 4, connect_timeout: float = 10.0) -> None:
        if pool_size < 1:
            raise ConfigError(f"pool_size must be ≥ 1, got {pool_size!r}")
        self._dsn = dsn
        self._where = redacted(dsn)
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None
        self._admitted = AdmittedFingerprints()

    @property
    def location(self) -> str:
        return self._where

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self._pool_size,
                timeout=self._connect_timeout,
                command_timeout=120,
                # Prepared statements otherwise switch to a generic plan after five runs, which
                # cannot see that "LIMIT $n" or "next_at <= $now" are selective: a lease then
                # sorted the whole frontier (300 ms instead of 2 ms per batch).
                server_settings={"plan_cache_mode": "force_custom_plan"},
            )
        except (ValueError, asyncpg.ClientConfigurationError) as exc:
            raise ConfigError(f"invalid PostgreSQL store URL {self._where}: {exc}") from None
        except Exception as exc:
            raise store_error("open", self._where, exc) from None
        self._pool = pool
        try:
            await self._tx("open", lambda conn: migrate(conn, self._where))
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                async with asyncio.timeout(10):
                    await pool.close()
            except Exception:
                pool.terminate()

    # -- plumbing -----------------------------------------------------------

    async def _tx(
        self,
        what: str,
        work: Callable[[Conn], Awaitable[T]],
        *,
        read_only: bool = False,
        snapshot: bool = False,
    ) -> T:
        """Run ``work(conn)`` in one transaction; again if it lost a deadlock or a race.
        ``snapshot``: every statement sees the same state (REPEATABLE READ)."""
        pool = self._pool
        if pool is None:
            raise StoreError(f"{what} failed on {self._where}: the store is not open")
        isolation = "repeatable_read" if snapshot else None
        for attempt in range(_RACE_RETRIES):
            try:
                async with pool.acquire() as conn:
                    async with conn.transaction(isolation=isolation, readonly=read_only):
                        return await work(conn)
            except _RACES:
                if attempt == _RACE_RETRIES - 1:
                    raise StoreUnavailable(
                        f"{what} failed on {self._where}: kept losing to concurrent writers"
                    ) from None
                await asyncio.sleep(0.01 * (attempt + 1))
            except (StoreError, ConfigError):
                raise
            except Exception as exc:
                text = (
                    isinstance(exc, UnicodeEncodeError)
                    or (isinstance(exc, asyncpg.DataError) and "encode" in str(exc))
                    or (isinstance(exc, asyncpg.PostgresError) and exc.sqlstate in TEXT_STATES)
                )
                if text:
                    raise UnstorableText(str(exc)) from exc
                raise store_error(what, self._where, exc) from None
        raise AssertionError("unreachable")

    async def _write_text_safe(
        self, what: str, make_work: Callable[[bool], Callable[[Conn], Awaitable[T]]]
    ) -> T:
        """Run ``make_work(False)``; if a string cannot be stored, ``make_work(True)``, which
        cleans the text first. The first transaction was rolled back: nothing lands twice."""
        try:
            return await self._tx(what, make_work(False))
        except UnstorableText:
            log.warning("replaced text PostgreSQL cannot store (NUL, lone surrogates) with U+FFFD")
        try:
            return await self._tx(what, make_work(True))
        except UnstorableText as exc:
            raise StoreError(f"{what} failed on {self._where}: {exc}") from None

    # -- jobs ---------------------------------------------------------------

    async def ensure_job(self, name: str, *, mode: str, config: Mapping[str, object]) -> JobInfo:
        text = job_config_json(config, name=name)
        now = time.time()

        async def work(conn: Conn) -> JobInfo:
            await conn.execute(
                "INSERT INTO shoal_jobs (name, mode, created_at, config)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                name,
                mode,
                now,
                text,
            )
            job = await reads.get_job(conn, name)
            assert job is not None, "a job inserted or found in this transaction"
            return job

        return await self._tx("ensure_job", work)

    async def get_job(self, name: str) -> JobInfo | None:
        return await self._tx("get_job", lambda conn: reads.get_job(conn, name), read_only=True)

    async def list_jobs(self) -> list[JobInfo]:
        return await self._tx("list_jobs", reads.list_jobs, read_only=True)

    async def delete_job(self, job_id: int, *, alive_since: float | None = None) -> bool:
        deleted = await self._tx(
            "delete_job", lambda conn: ops.delete_job(conn, job_id, alive_since)
        )
        if deleted:
            self._admitted.forget(job_id)
        return deleted

    async def size_bytes(self) -> int:
        return await self._tx("size_bytes", reads.size_bytes, read_only=True)

    async def update_job(self, job_id: int, *, config: Mapping[str, object]) -> None:
        text = job_config_json(config)

        async def work(conn: Conn) -> None:
            await conn.execute("UPDATE shoal_jobs SET config = $2 WHERE id = $1", job_id, text)

        await self._tx("update_job", work)

    async def set_desired(self, job_id: int, desired: str | None) -> None:
        async def work(conn: Conn) -> None:
            await conn.execute("UPDATE shoal_jobs SET desired = $2 WHERE id = $1", job_id, desired)

        await self._tx("set_desired", work)

    async def reopen(self, job_id: int, *, which: Reopen, depth: int | None = None) -> int:
        now = time.time()
        return await self._tx("reopen", lambda conn: ops.reopen(conn, job_id, which, depth, now))

    async def revisit(
        self, job_id: int, *, fetched_before: float | None = None, keep_history: int, now: float
    ) -> int:
        check_keep_history(keep_history)
        return await self._tx(
            "revisit",
            lambda conn: ops.revisit(conn, job_id, fetched_before, keep_history, now),
        )

    # -- frontier -----------------------------------------------------------

    async def add_requests(self, job_id: int, requests: Sequence[NewRequest], *, now: float) -> int:
        requests = self._admitted.unknown(job_id, first_of_each(requests))
        if not requests:
            return 0

        def make_work(clean: bool) -> Callable[[Conn], Awaitable[tuple[int, list[bytes]]]]:
            batch = [clean_request(r) for r in requests] if clean else requests
            return lambda conn: ops.admit(conn, job_id, batch, now)

        new, present = await self._write_text_safe("add_requests", make_work)
        self._admitted.remember(job_id, present)
        return new

    async def set_limits(
        self, job_id: int, *, max_pages: int | None, max_pages_per_host: int | None
    ) -> None:
        check_limits(max_pages=max_pages, max_pages_per_host=max_pages_per_host)

        async def work(conn: Conn) -> None:
            await conn.execute(
                "UPDATE shoal_jobs SET max_pages = $2, max_pages_per_host = $3 WHERE id = $1",
                job_id,
                max_pages,
                max_pages_per_host,
            )

        await self._tx("set_limits", work)

    async def lease(
        self,
        job_id: int,
        owner: str,
        *,
        limit: int,
        now: float,
        ttl: float,
        max_depth: int | None = None,
        gap: float = 0.0,
        quantum: float = HOST_QUANTUM,
    ) -> list[Request]:
        if limit <= 0:
            return []

        async def work(conn: Conn) -> list[Request]:
            return await frontier.lease(
                conn,
                job_id,
                owner,
                limit=limit,
                now=now,
                ttl=ttl,
                max_depth=max_depth,
                gap=gap,
                quantum=quantum,
            )

        return await self._tx("lease", work)

    async def min_open_depth(self, job_id: int) -> int | None:
        return await self._tx(
            "min_open_depth", lambda conn: reads.min_open_depth(conn, job_id), read_only=True
        )

    async def complete(self, job_id: int, owner: str, batch: Completion, *, now: float) -> int:
        bodies = await self._compressed_bodies(batch.results)
        discovered = self._admitted.unknown(job_id, first_of_each(batch.discovered))

        def make_work(clean: bool) -> Callable[[Conn], Awaitable[tuple[int, list[bytes]]]]:
            done = clean_completion(batch) if clean else batch
            found = [clean_request(r) for r in discovered] if clean else discovered
            return lambda conn: frontier.complete(conn, job_id, owner, done, bodies, found, now)

        new, present = await self._write_text_safe("complete", make_work)
        self._admitted.remember(job_id, present)
        return new

    async def _compressed_bodies(self, results: Sequence[FetchResult]) -> list[tuple[str, bytes]]:
        raw: dict[str, bytes] = {}
        for r in results:
            if r.body is not None and r.body_hash is not None:
                raw.setdefault(r.body_hash, r.body)
        if not raw:
            return []
        # Compressing is CPU work: off the loop.
        return await asyncio.to_thread(lambda: [(h, compress(b)) for h, b in sorted(raw.items())])

    async def renew_leases(self, job_id: int, owner: str, *, now: float, ttl: float) -> int:
        async def work(conn: Conn) -> int:
            return await frontier.renew_leases(conn, job_id, owner, now, ttl)

        return await self._tx("renew_leases", work)

    async def release_leases(
        self, job_id: int, owner: str, *, now: float, crashed: bool = False
    ) -> int:
        async def work(conn: Conn) -> int:
            return await frontier.release_leases(conn, job_id, owner, crashed, now)

        return await self._tx("release_leases", work)

    async def mark_started(
        self, job_id: int, owner: str, request_ids: Sequence[int], *, now: float
    ) -> int:
        if not request_ids:
            return 0

        async def work(conn: Conn) -> int:
            return await frontier.mark_started(conn, job_id, owner, request_ids, now)

        return await self._tx("mark_started", work)

    async def next_due(self, job_id: int) -> float | None:
        return await self._tx("next_due", lambda conn: reads.next_due(conn, job_id), read_only=True)

    async def counts(self, job_id: int) -> JobCounts:
        return await self._tx(
            "counts", lambda conn: reads.counts(conn, job_id), read_only=True, snapshot=True
        )

    async def hosts(self, job_id: int, *, limit: int = 50) -> list[HostView]:
        query, robots = hosts_query("shoal_", "$1", "$2"), robots_query("shoal_", "$1")

        async def work(conn: Conn) -> list[HostView]:
            rows = await conn.fetch(query, job_id, limit)
            return hosts_from_rows(rows, await conn.fetch(robots, job_id))

        return await self._tx("hosts", work, read_only=True)

    async def counters(self, job_id: int) -> dict[str, int]:
        return await self._tx("counters", lambda conn: reads.counters(conn, job_id), read_only=True)

    # -- hosts --------------------------------------------------------------

    async def get_robots(self, job_id: int, host: str, *, now: float) -> str | None:
        return await self._tx(
            "get_robots", lambda conn: reads.get_robots(conn, job_id, host, now), read_only=True
        )

    async def put_robots(self, job_id: int, host: str, data: str, *, expires: float) -> None:
        await self._tx("put_robots", lambda conn: ops.put_robots(conn, job_id, host, data, expires))

    # -- session ------------------------------------------------------------

    async def get_cookies(self, job_id: int) -> str | None:
        return await self._tx(
            "get_cookies", lambda conn: reads.get_cookies(conn, job_id), read_only=True
        )

    async def put_cookies(self, job_id: int, data: str) -> None:
        await self._tx("put_cookies", lambda conn: ops.put_cookies(conn, job_id, data))

    # -- workers ------------------------------------------------------------

    async def register_worker(
        self, job_id: int, owner: str, *, pid: int, hostname: str, now: float
    ) -> None:
        await self._tx(
            "register_worker",
            lambda conn: ops.register_worker(conn, job_id, owner, pid, hostname, now),
        )

    async def heartbeat(self, job_id: int, owner: str, *, now: float) -> None:
        await self._tx("heartbeat", lambda conn: ops.heartbeat(conn, job_id, owner, now))

    async def unregister_worker(self, job_id: int, owner: str) -> None:
        await self._tx("unregister_worker", lambda conn: ops.unregister_worker(conn, job_id, owner))

    async def list_workers(self, job_id: int) -> list[WorkerInfo]:
        return await self._tx(
            "list_workers", lambda conn: reads.list_workers(conn, job_id), read_only=True
        )

    # -- results ------------------------------------------------------------

    async def iter_results(
        self,
        job_id: int,
        *,
        batch_size: int = 1000,
        with_bodies: bool = False,
        where: ResultFilter | None = None,
        after: int = -1,
    ) -> AsyncIterator[list[FetchResult]]:
        """Every result row of the job in request_id order, read in one snapshot (a
        REPEATABLE READ transaction on a pooled connection held until the iteration ends)."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be ≥ 1, got {batch_size!r}")
        pool = self._pool
        if pool is None:
            raise StoreError(f"iter_results failed on {self._where}: the store is not open")
        try:
            async with pool.acquire() as conn:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    while True:
                        batch = await reads.read_results(
                            conn, job_id, after, batch_size, with_bodies, where
                        )
                        if not batch:
                            return
                        after = batch[-1].request_id
                        yield batch
        except (StoreError, ConfigError, GeneratorExit, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise store_error("iter_results", self._where, exc) from None

    async def find_requests(
        self, job_id: int, fingerprints: Sequence[bytes]
    ) -> dict[bytes, FoundRequest]:
        wanted = list(dict.fromkeys(fingerprints))
        return await self._tx(
            "find_requests",
            lambda conn: reads.find_requests(conn, job_id, wanted),
            read_only=True,
            snapshot=True,
        )

    async def history(self, job_id: int, url: str) -> list[FetchResult]:
        return await self._tx(
            "history", lambda conn: reads.history(conn, job_id, url), read_only=True
        )

    async def get_body(self, body_hash: str) -> bytes | None:
        return await self._tx(
            "get_body", lambda conn: reads.get_body(conn, body_hash), read_only=True
        )

    async def summary(self, job_id: int, *, percentiles: bool = True) -> JobSummary:
        return await self._tx(
            "summary",
            lambda conn: reads.summary(conn, job_id, percentiles=percentiles),
            read_only=True,
            snapshot=True,
        )
