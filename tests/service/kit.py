"""Helpers for the service tests: the app in process, and waiting on its events."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from shoal.service import ServiceSettings, create_app

TOKEN = "t0ken-for-the-tests-only"
FAST = {"concurrency": 16, "per_host": 4, "timeout": 10, "retries": 0}


@contextlib.asynccontextmanager
async def served(
    tmp_path: Path, **settings: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app over a fresh SQLite store, its lifespan entered, and a client for it."""
    settings.setdefault("store", str(tmp_path / "service.db"))
    settings.setdefault("allow_private", True)
    app = create_app(ServiceSettings(**settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shoal.test") as client:
            yield app, client


async def wait_for_state(
    app: FastAPI, client: httpx.AsyncClient, name: str, want: str, limit: float = 60
) -> dict[str, Any]:
    """The job as GET shows it once its state is ``want``: waits on the service's own
    ``state`` events, not a clock."""
    hub = app.state.shoal.hub
    subscriber = hub.subscribe(name)
    try:
        async with asyncio.timeout(limit):
            while True:
                job: dict[str, Any] = (await client.get(f"/jobs/{name}")).json()
                if job["state"] == want:
                    return job
                await subscriber.wait()
                for text in subscriber.take():
                    message = json.loads(text)
                    if message["type"] == "state" and message["state"] in ("failed",):
                        if want != "failed":
                            raise AssertionError(f"job {name} failed: {message}")
    finally:
        hub.unsubscribe(subscriber)
