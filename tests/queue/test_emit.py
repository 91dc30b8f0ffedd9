"""``--emit`` on ``shoal serve`` and ``shoal crawl``: every result of every job, as it is
committed, on the topic exchange ``shoal.results`` with the job as routing key."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from shoal.queue import EMIT_EXCHANGE
from shoal.store import SQLiteStore
from shoal.testweb import SiteSpec, TestWeb

from ..cli.conftest import run_shoal
from ..service.served import client, connect, follow_until, shoal_serve
from .conftest import Broker


class Emitted:
    """Result messages of some jobs, off an exclusive queue bound to the emit exchange."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    def of(self, job: str) -> list[dict[str, Any]]:
        return [body for body in self.bodies if body["job"] == job]

    async def wait_for(self, job: str, count: int, seconds: float = 90) -> None:
        async with asyncio.timeout(seconds):
            while len(self.of(job)) < count:
                self.arrived.clear()
                await self.arrived.wait()


async def emitted(broker: Broker, jobs: list[str]) -> AsyncIterator[Emitted]:
    collected = Emitted()
    connection = await aio_pika.connect(broker.url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            EMIT_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True)
        for job in jobs:
            await queue.bind(exchange, routing_key=job)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            collected.bodies.append(json.loads(message.body))
            collected.arrived.set()
            await message.ack()

        await queue.consume(on_message)
        yield collected
    finally:
        await connection.close()


async def stored_urls(path: Path, job: str) -> set[str]:
    async with SQLiteStore(path) as store:
        info = await store.get_job(job)
        assert info is not None
        return {r.url async for batch in store.iter_results(info.id) for r in batch}


async def test_serve_emits_every_result_of_every_job(broker: Broker, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    crawl, fetch = f"site-{tag}", f"list-{tag}"
    store = tmp_path / "served.db"
    async with TestWeb(SiteSpec(hosts=2, pages=30, cross_host_links=0.2)) as web:
        urls = [web.url(0, f"/page/{i}") for i in range(20)]
        gen = emitted(broker, [crawl, fetch])
        got = await anext(gen)
        try:
            async with shoal_serve(str(store), "--allow-private", "--emit", broker.url) as served:
                async with connect(served.ws_url + "/events") as ws, client(served) as http:
                    options = {"concurrency": 8, "per_host": 2, "retries": 0}
                    for body in (
                        {"name": crawl, "kind": "crawl", "seeds": [web.url(0, "/")], "depth": 2},
                        {"name": fetch, "kind": "fetch", "urls": urls},
                    ):
                        created = await http.post("/jobs", json={**body, **options})
                        assert created.status_code == 201, created.text
                    await follow_until(ws, crawl, "finished")
                    await got.wait_for(fetch, len(urls))
                # Stopped as a supervisor stops it: what was committed is still emitted.
                assert await served.terminate() in (0, -signal.SIGTERM)
            crawled = await stored_urls(store, crawl)
            await got.wait_for(crawl, len(crawled))
        finally:
            await gen.aclose()
    assert {body["url"] for body in got.of(fetch)} == set(urls) == await stored_urls(store, fetch)
    assert {body["url"] for body in got.of(crawl)} == crawled
    assert len(crawled) > 1
    assert all(body["status"] == 200 for body in got.bodies)
    # Each result once: the emitter publishes each committed result a single time.
    assert len(got.bodies) == len(urls) + len(crawled)


async def test_crawl_emits_every_result(broker: Broker, tmp_path: Path) -> None:
    job = f"crawl-{uuid.uuid4().hex[:8]}"
    async with TestWeb(SiteSpec(hosts=1, pages=25)) as web:
        gen = emitted(broker, [job])
        got = await anext(gen)
        try:
            ran = await asyncio.to_thread(
                run_shoal, "crawl", web.url(0, "/"), "--store", str(tmp_path / "c.db"),
                "--job", job, "--depth", "2", "--emit", broker.url, "--quiet", cwd=tmp_path,
            )  # fmt: skip
            assert ran.code == 0, ran.stderr
            crawled = await stored_urls(tmp_path / "c.db", job)
            await got.wait_for(job, len(crawled))
        finally:
            await gen.aclose()
    assert {body["url"] for body in got.of(job)} == crawled and len(crawled) > 1


@pytest.mark.parametrize("emit", ["http://localhost/", "amqp://guest:guest@127.0.0.1:9/"])
def test_serve_with_a_bad_or_unreachable_broker_is_one_line(emit: str, tmp_path: Path) -> None:
    ran = run_shoal(
        "serve", "--store", str(tmp_path / "s.db"), "--port", "0", "--emit", emit, cwd=tmp_path
    )
    assert ran.code == (2 if emit.startswith("http") else 3), ran.stderr
    assert ran.stderr.startswith("shoal:") and "Traceback" not in ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1
