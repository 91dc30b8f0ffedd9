"""Fixtures for the testweb suite: a client session and a bounded poll."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

WaitUntil = Callable[[Callable[[], bool]], Awaitable[None]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as client:
        yield client


@pytest.fixture
def wait_until() -> WaitUntil:
    """Poll a condition every 5 ms; fail after about 5 s.

    Server state changes on the server's side of a socket, so there is no
    event to wait on; polling with a bound is the honest option.
    """

    async def wait(condition: Callable[[], bool]) -> None:
        for _ in range(1000):
            if condition():
                return
            await asyncio.sleep(0.005)
        pytest.fail("condition still false after 5 s")

    return wait
