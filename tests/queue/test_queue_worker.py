"""``shoal worker --queue`` against a real RabbitMQ and the testweb site.

Requests go in through ``shoal.queue.enqueue`` (what ``shoal enqueue`` runs) or
raw publishes; results are taken off the results queue. The store is read
afterwards: each request exactly once there, at least once on the results.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import uuid
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
    """SIGTERM, and what the worker said; a worker that does not exit in time is killed."""
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = await asyncio.to_thread(proc.communicate, None, 100)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = await asyncio.to_thread(proc.communicate, None, 30)
        return -1, "did not exit in time after SIGTERM: " + err.decode(errors="replace")
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
    urls = page_urls(queue_site, 2000)
    await enqueue(broker.url, [u.encode() for u in urls], topology=topology)
    db = tmp_path / "q.db"
    first = start_worker(broker, topology, str(db), "--concurrency", "16", cwd=tmp_path)
    await results.wait_for(300)
    assert first.poll() is None
    kill(first)
    second = start_worker(broker, topology, str(db), cwd=tmp_path)
    try:
        await results.wait_for(2000, seconds=100)
    finally:
        code, err = await stop(second)
    assert code == 0, err
    assert {body["url"] for body in results.bodies} == set(urls)
    stored = stored_urls(db)
    assert len(stored) == len(set(stored)) == 2000


@pytest.mark.timeout(300)  # a RabbitMQ node takes a while to stop and start on a busy machine
async def test_a_broker_restart_loses_nothing(
    broker: Broker, topology: Topology, results: Results, queue_site: TestWeb, tmp_path: Path
) -> None:
    if broker.node is None:
        pytest.skip("SHOAL_TEST_AMQP_URL is a broker these tests may not restart")
    urls = page_urls(queue_site, 1000)
    await enqueue(broker.url, [u.encode() for u in urls], topology=topology)
    db = tmp_path / "q.db"
    worker = start_worker(broker, topology, str(db), "--concurrency", "16", cwd=tmp_path)
    try:
        await results.wait_for(200)
        await asyncio.to_thread(broker.node.restart)
        await results.wait_for(1000, seconds=100)
    finally:
        code, err = await stop(worker)
    assert code == 0, err
    assert "Traceback" not in err
    assert {body["url"] for body in results.bodies} == set(urls)
    stored = stored_urls(db)
    assert len(stored) == len(set(stored)) == 1000


PER_HOST, DELAY = 2, 0.2


async def test_two_workers_on_one_queue_keep_per_host_across_both(
    broker: Broker,
    topology: Topology,
    results: Results,
    queue_site: TestWeb,
    pg_server: str,
    tmp_path: Path,
) -> None:
    urls = page_urls(queue_site, 300)
    await enqueue(broker.url, [u.encode() for u in urls], topology=topology)
    queue_site.reset_stats()
    polite = ("--per-host", str(PER_HOST), "--delay", str(DELAY))
    async with fresh_schema(pg_server) as dsn:
        workers = [start_worker(broker, topology, dsn, *polite, cwd=tmp_path) for _ in range(2)]
        try:
            await results.wait_for(300, seconds=100)
        finally:
            outcomes = [await stop(worker) for worker in workers]
    for code, err in outcomes:
        assert code == 0, err
    assert {body["url"] for body in results.bodies} == set(urls)
    for host in queue_site.stats().hosts:
        assert host.max_in_flight <= PER_HOST, host
        assert host.min_start_gap is None or host.min_start_gap >= DELAY * 0.75, host
    assert os.environ.get("SHOAL_TEST_AMQP_URL") or broker.node is not None


async def publish_raw(broker: Broker, topology: Topology, bodies: list[bytes]) -> None:
    from shoal.queue._amqp import declare_requests

    connection = await aio_pika.connect(broker.url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_requests(channel, topology)
        for number, body in enumerate(bodies):
            message = aio_pika.Message(body, message_id=f"{uuid.uuid4().hex}-{number}")
            await channel.default_exchange.publish(message, routing_key=topology.requests)
    finally:
        await connection.close()


async def test_a_url_already_recorded_is_answered_from_the_store_not_fetched_again(
    broker: Broker, topology: Topology, results: Results, queue_site: TestWeb, tmp_path: Path
) -> None:
    url = queue_site.url(1, "/page/7")
    queue_site.reset_stats()
    db = tmp_path / "q.db"
    worker = start_worker(broker, topology, str(db), cwd=tmp_path)
    try:
        await publish_raw(broker, topology, [f'{{"url": "{url}", "meta": 1}}'.encode()])
        await results.wait_for(1)
        # The same URL again, in two more requests (a redelivery looks the same).
        await publish_raw(
            broker,
            topology,
            [f'{{"url": "{url}", "meta": {n}}}'.encode() for n in (2, 3)],
        )
        await results.wait_for(3)
        bodies = list(results.bodies)
    finally:
        code, err = await stop(worker)
    assert code == 0, err
    assert queue_site.stats().hosts[1].paths["/page/7"] == 1
    assert sorted(b["meta"] for b in bodies) == [1, 2, 3]
    assert {b["fetched_at"] for b in bodies} == {bodies[0]["fetched_at"]}
    assert stored_urls(db) == [url]


async def test_sigterm_mid_run_answers_what_it_holds_and_exits_0(
    broker: Broker, topology: Topology, results: Results, queue_site: TestWeb, tmp_path: Path
) -> None:
    urls = page_urls(queue_site, 1000)
    await enqueue(broker.url, [u.encode() for u in urls], topology=topology)
    db = tmp_path / "q.db"
    worker = start_worker(
        broker, topology, str(db), "--concurrency", "8", "--prefetch", "50", cwd=tmp_path
    )
    await results.wait_for(100)
    code, err = await stop(worker)
    assert code == 0, err
    assert "Traceback" not in err
    answered = {body["url"] for body in results.bodies}
    stored = set(stored_urls(db))
    assert answered == stored  # held requests were finished and answered, nothing else
    assert len(stored) < 1000
    # The rest waits in the queue for the next worker.
    second = start_worker(broker, topology, str(db), cwd=tmp_path)
    try:
        await results.wait_for(1000, seconds=100)
    finally:
        code, err = await stop(second)
    assert code == 0, err
    assert set(stored_urls(db)) == set(urls)


async def test_a_crawl_order_publishes_each_page_and_acks_when_done(
    broker: Broker, topology: Topology, results: Results, tmp_path: Path
) -> None:
    with TestWeb.run_in_thread(SiteSpec(hosts=1, pages=30, links_per_page=3)) as web:
        order = {"crawl": {"seeds": [web.url(0, "/")], "depth": 10}, "job": "c", "meta": "x"}
        db = tmp_path / "q.db"
        worker = start_worker(broker, topology, str(db), cwd=tmp_path)
        try:
            await publish_raw(broker, topology, [json.dumps(order).encode()])
            async with asyncio.timeout(60):
                while len({b["url"] for b in results.bodies}) < 31:
                    results.arrived.clear()
                    await results.arrived.wait()
        finally:
            code, err = await stop(worker)
    assert code == 0, err
    assert all(b["job"] == "c" and b["meta"] == "x" for b in results.bodies)
    assert len(set(stored_urls(db, "c"))) == len(stored_urls(db, "c")) == 31


def test_enqueue_command_publishes_valid_lines_and_reports_bad_ones(
    broker: Broker, topology: Topology, tmp_path: Path
) -> None:
    from ..cli.conftest import run_shoal

    listing = tmp_path / "urls.txt"
    listing.write_text("http://127.0.0.2:9/a\nnot a url\n# comment\nhttp://127.0.0.2:9/b\n")
    ran = run_shoal(
        "enqueue", broker.url, str(listing), "--requests", topology.requests, "--job", "j",
        cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert "urls.txt:2:" in ran.stderr and "1 invalid input line" in ran.stderr
    assert "2 request messages published" in ran.stderr
    bad = run_shoal("enqueue", "http://not-amqp/", str(listing), cwd=tmp_path)
    assert bad.code == 2 and bad.stderr.startswith("shoal:") and "Traceback" not in bad.stderr


async def test_emit_publishes_every_result_of_a_fetch(
    broker: Broker, queue_site: TestWeb, tmp_path: Path
) -> None:
    from shoal.queue import EMIT_EXCHANGE

    from ..cli.conftest import run_shoal

    urls = page_urls(queue_site, 50)
    listing = tmp_path / "emit.txt"
    listing.write_text("\n".join(urls) + "\n")
    connection = await aio_pika.connect(broker.url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            EMIT_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key="emit")
        ran = await asyncio.to_thread(
            run_shoal, "fetch", str(listing), "--store", str(tmp_path / "e.db"), "--emit",
            broker.url, "--quiet", cwd=tmp_path,
        )  # fmt: skip
        assert ran.code == 0, ran.stderr
        got = []
        async with asyncio.timeout(30):
            while len(got) < 50:
                message = await queue.get(fail=False)
                if message is None:
                    await asyncio.sleep(0.05)
                    continue
                await message.ack()
                got.append(json.loads(message.body))
    finally:
        await connection.close()
    assert {body["url"] for body in got} == set(urls)
    assert all(body["job"] == "emit" and body["status"] == 200 for body in got)


def test_a_bad_broker_url_is_one_line_and_exit_2(tmp_path: Path) -> None:
    from ..cli.conftest import run_shoal

    ran = run_shoal(
        "worker", "--queue", "http://localhost/", "--store", str(tmp_path / "q.db"), cwd=tmp_path
    )
    assert ran.code == 2
    assert ran.stderr.startswith("shoal:") and "amqp://" in ran.stderr
    assert "Traceback" not in ran.stderr


async def test_header_secrets_of_a_request_stay_out_of_the_store(
    broker: Broker, topology: Topology, results: Results, queue_site: TestWeb, tmp_path: Path
) -> None:
    url = queue_site.url(2, "/page/3")
    db = tmp_path / "q.db"
    worker = start_worker(broker, topology, str(db), cwd=tmp_path)
    try:
        body = {"url": url, "headers": {"X-Api-Key": "s3cret", "Accept": "text/html"}}
        await publish_raw(broker, topology, [json.dumps(body).encode()])
        await results.wait_for(1)
    finally:
        code, err = await stop(worker)
    assert code == 0, err
    assert results.bodies[0]["status"] == 200
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute("SELECT headers FROM requests").fetchone()
    assert "s3cret" not in stored and "<redacted>" in stored and "text/html" in stored
    assert b"s3cret" not in db.read_bytes()
