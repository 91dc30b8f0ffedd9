"""Fixtures for the store tests.

``store`` runs each contract test once per backend in ``BACKENDS``: SQLite in a
temporary file, PostgreSQL in a fresh schema of the session's server (see
``pg_dsn`` in tests/conftest.py). The contract tests do not know which one runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from shoal.core.model import JobInfo
from shoal.store import PostgresStore, SQLiteStore, Store

from ..conftest import fresh_schema


@contextlib.asynccontextmanager
async def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with SQLiteStore(tmp_path / "store.db") as store:
        yield store


@contextlib.asynccontextmanager
async def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    server: str = request.getfixturevalue("pg_server")
    async with fresh_schema(server) as dsn, PostgresStore(dsn) as store:
        yield store


BACKENDS: dict[
    str, Callable[[pytest.FixtureRequest, Path], contextlib.AbstractAsyncContextManager[Store]]
] = {"postgres": _postgres, "sqlite": _sqlite}


@pytest.fixture(params=sorted(BACKENDS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with BACKENDS[request.param](request, tmp_path) as opened:
        yield opened


@pytest.fixture
async def job(store: Store) -> JobInfo:
    return await store.ensure_job("job", mode="crawl", config={})
