"""A real RabbitMQ for the queue tests: SHOAL_TEST_AMQP_URL, else a throwaway node.

Each test gets queue names of its own (``topology``), so tests never see each
other's messages on a shared broker.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import pytest

from shoal.queue import Topology
from shoal.testweb.rabbit import RabbitNotInstalled, ThrowawayRabbit


@dataclass
class Broker:
    url: str
    node: ThrowawayRabbit | None


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    url = os.environ.get("SHOAL_TEST_AMQP_URL")
    if url:
        yield Broker(url, None)
        return
    try:
        node = ThrowawayRabbit()
        node.start()
    except RabbitNotInstalled as exc:
        pytest.skip(f"no RabbitMQ: {exc}")
    except RuntimeError as exc:
        pytest.skip(f"a throwaway rabbitmq-server could not start: {exc}")
    try:
        yield Broker(node.url, node)
    finally:
        node.stop()


@pytest.fixture
def topology() -> Topology:
    tag = uuid.uuid4().hex[:8]
    return Topology(requests=f"test-{tag}.requests", results=f"test-{tag}.results")


@dataclass
class Results:
    """Result messages taken off a results queue, as they come."""

    bodies: list[dict[str, object]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def request_ids(self) -> set[object]:
        return {body["request_id"] for body in self.bodies}

    async def wait_for(self, distinct: int, seconds: float = 90.0) -> None:
        async with asyncio.timeout(seconds):
            while len(self.request_ids()) < distinct:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def results(broker: Broker, topology: Topology) -> AsyncIterator[Results]:
    """Everything published on the test's results exchange (its durable queue, consumed)."""
    from shoal.queue._amqp import declare_results

    collected = Results()
    connection = await aio_pika.connect_robust(broker.url, reconnect_interval=0.5)
    try:
        channel = await connection.channel()
        await declare_results(channel, topology)
        queue = await channel.declare_queue(topology.results, durable=True)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            collected.bodies.append(json.loads(message.body))
            collected.arrived.set()
            await message.ack()

        await queue.consume(on_message)
        yield collected
    finally:
        await connection.close()


def start_worker(
    broker: Broker, topology: Topology, store: str, *extra: str, cwd: Path
) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "shoal", "worker", "--queue", broker.url, "--store", store,
        "--requests", topology.requests, "--results", topology.results, "--quiet", *extra,
    ]  # fmt: skip
    env = dict(os.environ)
    return subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
