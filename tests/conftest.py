"""Fixtures shared across the suite: a real testweb site, a real SQLite store and a real
PostgreSQL server (``SHOAL_TEST_PG_DSN``, or a throwaway cluster started for the session);
and what tests of fetch processes look for in /proc."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from shoal.core.model import JobInfo
from shoal.engine.fetch.child import PROCESS_NAME
from shoal.store import SQLiteStore, Store
from shoal.testweb import SiteSpec, TestWeb
from shoal.testweb.pgcluster import ThrowawayPostgres

WaitFor = Callable[[Callable[[], bool], float], Awaitable[None]]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def fetch_children(pid: int) -> list[int]:
    """The live fetch processes ``pid`` started (see ``shoal.engine.fetch.pool``)."""
    try:
        pids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    found = []
    for child in pids:
        try:
            named = Path(f"/proc/{child}/comm").read_text().strip() == PROCESS_NAME
        except FileNotFoundError:
            continue
        if named and alive(int(child)):
            found.append(int(child))
    return found


@pytest.fixture
async def web() -> AsyncIterator[TestWeb]:
    async with TestWeb(SiteSpec(hosts=4, pages=60)) as site:
        yield site


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = SQLiteStore(tmp_path / "shoal.db")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def fetch_job(sqlite_store: Store) -> JobInfo:
    return await sqlite_store.ensure_job("t", mode="fetch", config={})


@pytest.fixture
def wait_for() -> WaitFor:
    """Poll ``condition`` until true; fail after ``seconds``. Never a bare sleep."""

    async def wait(condition: Callable[[], bool], seconds: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not condition():
            if loop.time() > deadline:
                pytest.fail(f"condition not met within {seconds} s")
            await asyncio.sleep(0.01)

    return wait


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The DSN of a PostgreSQL server the tests may create schemas in."""
    dsn = os.environ.get("SHOAL_TEST_PG_DSN")
    if dsn:
        yield dsn
        return
    with ThrowawayPostgres() as pg:
        yield pg.dsn


def _with_search_path(dsn: str, schema: str) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}search_path={schema}"


@contextlib.asynccontextmanager
async def fresh_schema(server_dsn: str) -> AsyncIterator[str]:
    """A DSN whose tables live in a fresh schema of their own, dropped afterwards."""
    schema = f"shoal_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
    finally:
        await admin.close()
    try:
        yield _with_search_path(server_dsn, schema)
    finally:
        admin = await asyncpg.connect(server_dsn)
        try:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        finally:
            await admin.close()


@pytest.fixture
async def pg_dsn(pg_server: str) -> AsyncIterator[str]:
    async with fresh_schema(pg_server) as dsn:
        yield dsn
