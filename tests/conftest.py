"""Fixtures shared across the suite: a real testweb site and a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from shoal.core.model import JobInfo
from shoal.store import SQLiteStore, Store
from shoal.testweb import SiteSpec, TestWeb

WaitFor = Callable[[Callable[[], bool], float], Awaitable[None]]


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
