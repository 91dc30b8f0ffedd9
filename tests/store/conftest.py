"""Fixtures for the store tests.

``store`` runs each contract test once per backend in ``BACKENDS``. A backend
is a coroutine that opens a fresh, empty store; adding PostgreSQL means adding
one entry here (opening a scratch database) — the contract tests stay as they are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from shoal.core.model import JobInfo
from shoal.store import SQLiteStore, Store


async def _open_sqlite(tmp_path: Path) -> Store:
    store = SQLiteStore(tmp_path / "store.db")
    await store.open()
    return store


BACKENDS: dict[str, Callable[[Path], Awaitable[Store]]] = {"sqlite": _open_sqlite}


@pytest.fixture(params=sorted(BACKENDS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened = await BACKENDS[request.param](tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def job(store: Store) -> JobInfo:
    return await store.ensure_job("job", mode="crawl", config={})
