"""A real ``shoal serve`` process on 127.0.0.1 for the end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

_LISTENING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@dataclass
class Served:
    url: str
    process: asyncio.subprocess.Process
    log: list[str] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    async def terminate(self) -> int:
        """SIGTERM, as a supervisor stops it; returns its exit code."""
        self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            return await self.process.wait()


@contextlib.asynccontextmanager
async def shoal_serve(
    store: str, *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[Served]:
    """``shoal serve --store STORE --port 0 ARGS`` until it listens; stopped on exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shoal",
        "serve",
        "--store",
        store,
        "--port",
        "0",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    assert process.stderr is not None
    log: list[str] = []
    try:
        async with asyncio.timeout(60):
            while True:
                line = (await process.stderr.readline()).decode()
                if not line:
                    raise AssertionError("shoal serve ended before listening:\n" + "".join(log))
                log.append(line)
                if (match := _LISTENING.search(line)) is not None:
                    break
        served = Served(match.group(1), process, log)

        async def drain() -> None:
            assert process.stderr is not None
            while line := await process.stderr.readline():
                log.append(line.decode())

        draining = asyncio.ensure_future(drain())
        try:
            yield served
        finally:
            if process.returncode is None:
                await served.terminate()
            await draining
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def follow_until(
    ws: ClientConnection, job: str, state: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Messages until ``job`` reaches ``state``: (page messages, the state message)."""
    pages: list[dict[str, Any]] = []
    async with asyncio.timeout(120):
        async for text in ws:
            message = json.loads(text)
            if message["type"] == "page":
                pages.append(message)
            elif message["type"] == "state" and message["job"] == job:
                assert message["state"] != "failed", message
                if message["state"] == state:
                    return pages, message
    raise AssertionError("the WebSocket closed first")


def client(served: Served, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=served.url, headers=headers, timeout=30)


__all__ = ["Served", "client", "connect", "follow_until", "shoal_serve"]
