"""``shoal worker --queue`` against a real RabbitMQ and the testweb site.

Requests go in through ``shoal.queue.enqueue`` (what ``shoal enqueue`` runs) or
raw publishes; results are taken off the results queue. The store is read
afterwards: each request exactly once there, at least once on the results.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pytest

from shoal.queue import REASON_HEADER, Topology, enqueue
from shoal.testweb import SiteSpec, TestWeb

from ..conftest import fresh_schema
from .conftest import Broker, Results, start_worker


@pytest.fixture(scope="module")
def queue_site() -> Iterator[TestWeb]:
    with TestWeb.run_in_thread(SiteSpec(hosts=5, pages=1000, latency_ms=1)) as web:
        yield web


def page_urls(web: TestWeb, n: int) -> list[str]:
    hosts = web.spec.hosts
    return [web.url(i % hosts, f"/page/{i // hosts}") for i in range(n)]


def stored_urls(db: Path, job: str = "queue") -> list[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT r.url FROM results r JOIN jobs j ON j.id = r.job_id WHERE j.name = ?",
            (job,),
        ).fetchall()
    return [row[0] for row in rows]


async def stop(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.to_thread(proc.communicate, None, 120)
    return proc.returncode, err.decode(errors="replace")


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.stderr is not None
    proc.stderr.close()


async def test_every_request_answered_once_and_the_store_complete(
    broker: Broker, topology: Topology, results: Results, queue_site: TestWeb, tmp_path: Path
) -> None:
    urls = page_urls(queue_site, 5000)
    report = await enqueue(broker.url, [u.encode() for u in urls], topology=topology)
    assert report.published == 5000
    db = tmp_path / "q.db"
    worker = start_worker(broker, topology, str(db), cwd=tmp_path)
    try:
        await results.wait_for(5000, seconds=100)
    finally:
        code, err = await stop(worker)
    assert code == 0, err
    assert "Traceback" not in err
    ids = Counter(body["request_id"] for body in results.bodies)
    assert len(ids) == 5000 and max(ids.values()) == 1  # nothing redelivered: once each
    assert {body["url"] for body in results.bodies} == set(urls)
    assert all(body["status"] == 200 and body["job"] == "queue" for body in results.bodies)
    stored = stored_urls(db)
    assert len(stored) == 5000 and set(stored) == set(urls)


async def test_poison_goes_to_the_dead_letter_queue_with_its_reason(
    broker: Broker, topology: Topology, results: Results, queue_site: TestWeb, tmp_path: Path
) -> None:
    good = queue_site.url(0, "/page/1")
    poison = {
        b"not json": "not JSON",
        b'{"meta": "no url"}': "missing 'url'",
        b'{"url": "ftp://127.0.0.1/x"}': "scheme",
        b'{"url": "' + b"a" * 70_000 + b'"}': "too large",
    }
    worker = start_worker(broker, topology, str(tmp_path / "q.db"), cwd=tmp_path)
    connection = await aio_pika.connect(broker.url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        from shoal.queue._amqp import declare_requests

        _, dead = await declare_requests(channel, topology)
        for body in [*poison, f'{{"url": "{good}", "meta": 7}}'.encode()]:
            message = aio_pika.Message(body, message_id=body[:20].hex())
            await channel.default_exchange.publish(message, routing_key=topology.requests)
        await results.wait_for(1)
        reasons: dict[bytes, str] = {}
        async with asyncio.timeout(30):
            while len(reasons) < len(poison):
                message = await dead.get(fail=False)
                if message is None:
                    await asyncio.sleep(0.1)
                    continue
                await message.ack()
                assert message.headers is not None
                reasons[message.body] = str(message.headers[REASON_HEADER])
    finally:
        await connection.close()
        code, err = await stop(worker)
    assert code == 0, err
    for body, reason in poison.items():
        assert reason in reasons[body]
    (answer,) = results.bodies
    assert (answer["url"], answer["status"], answer["meta"]) == (good, 200, 7)


async def test_a_killed_worker_then_a_new_one_answer_every_request_once_in_the_store(
    broker: Broker, topology: Topology, results: Results, queue_site: TestWeb, tmp_path: Path
) -> None:
    urls = page_urls(queue_site, 3000)
    await enqueue(broker.url, [u.encode() for u in urls], topology=topology)
    db = tmp_path / "q.db"
    first = start_worker(broker, topology, str(db), "--concurrency", "16", cwd=tmp_path)
    await results.wait_for(300)
    assert first.poll() is None
    kill(first)
    second = start_worker(broker, topology, str(db), cwd=tmp_path)
    try:
        await results.wait_for(3000, seconds=100)
    finally:
        code, err = await stop(second)
    assert code == 0, err
    assert {body["url"] for body in results.bodies} == set(urls)
    stored = stored_urls(db)
    assert len(stored) == len(set(stored)) == 3000


async def test_a_broker_restart_loses_nothing(
    broker: Broker, topology: Topology, results: Results, queue_site: TestWeb, tmp_path: Path
) -> None:
    if broker.node is None:
        pytest.skip("SHOAL_TEST_AMQP_URL is a broker these tests may not restart")
    urls = page_urls(queue_site, 2000)
    await enqueue(broker.url, [u.encode() for u in urls], topology=topology)
    db = tmp_path / "q.db"
    worker = start_worker(broker, topology, str(db), "--concurrency", "16", cwd=tmp_path)
    try:
        await results.wait_for(200)
        await asyncio.to_thread(broker.node.restart)
        await results.wait_for(2000, seconds=100)
    finally:
        code, err = await stop(worker)
    assert code == 0, err
    assert "Traceback" not in err
    assert {body["url"] for body in results.bodies} == set(urls)
    stored = stored_urls(db)
    assert len(stored) == len(set(stored)) == 2000


PER_HOST, DELAY = 2, 0.1


async def test_two_workers_on_one_queue_keep_per_host_across_both(
    broker: Broker,
    topology: Topology,
    results: Results,
    queue_site: TestWeb,
    pg_server: str,
    tmp_path: Path,
) -> None:
    urls = page_urls(queue_site, 600)
    await enqueue(broker.url, [u.encode() for u in urls], topology=topology)
    queue_site.reset_stats()
    polite = ("--per-host", str(PER_HOST), "--delay", str(DELAY))
    async with fresh_schema(pg_server) as dsn:
        workers = [start_worker(broker, topology, dsn, *polite, cwd=tmp_path) for _ in range(2)]
        try:
            await results.wait_for(600, seconds=100)
        finally:
            outcomes = [await stop(worker) for worker in workers]
    for code, err in outcomes:
        assert code == 0, err
    assert {body["url"] for body in results.bodies} == set(urls)
    for host in queue_site.stats().hosts:
        assert host.max_in_flight <= PER_HOST, host
        assert host.min_start_gap is None or host.min_start_gap >= DELAY * 0.75, host
    assert os.environ.get("SHOAL_TEST_AMQP_URL") or broker.node is not None
