"""``shoal enqueue``: a URL list (or JSON lines) as request messages, with confirms."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import aio_pika

from shoal.core.errors import InputError
from shoal.core.inputs import parse_lines
from shoal.core.model import NewRequest
from shoal.queue._amqp import Topology, connect, declare_requests

__all__ = ["EnqueueReport", "enqueue", "request_message"]

_WINDOW = 2000  # messages awaiting their confirm at once
SHOWN_ERRORS = 10


@dataclass
class EnqueueReport:
    published: int = 0
    invalid: int = 0
    errors: list[InputError] = field(default_factory=list)


def request_message(request: NewRequest, *, job: str | None) -> bytes:
    """The request message for one parsed input line."""
    obj: dict[str, object] = {"url": request.url}
    if request.method != "GET":
        obj["method"] = request.method
    if request.headers:
        obj["headers"] = [list(h) for h in request.headers]
    if request.body is not None:
        obj["body"] = request.body.decode("utf-8")
    if job is not None:
        obj["job"] = job
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


async def enqueue(
    url: str,
    lines: Iterable[bytes | str],
    *,
    topology: Topology | None = None,
    job: str | None = None,
    on_published: Callable[[int], None] | None = None,
) -> EnqueueReport:
    """Publish every valid line as a request message (persistent, a fresh ``message_id``)
    and wait for the broker's confirms; bad lines are counted, not sent."""
    topology = topology or Topology()
    report = EnqueueReport()
    connection = await connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_requests(channel, topology)
        exchange = channel.default_exchange
        window = asyncio.Semaphore(_WINDOW)

        async def publish(body: bytes) -> None:
            try:
                message = aio_pika.Message(
                    body,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=uuid.uuid4().hex,
                )
                await exchange.publish(message, routing_key=topology.requests, timeout=60)
                report.published += 1
                if on_published is not None:
                    on_published(1)
            finally:
                window.release()

        async with asyncio.TaskGroup() as tasks:
            for item in parse_lines(lines):
                if isinstance(item, InputError):
                    report.invalid += 1
                    if len(report.errors) < SHOWN_ERRORS:
                        report.errors.append(item)
                    continue
                await window.acquire()
                tasks.create_task(publish(request_message(item, job=job)))
    finally:
        await connection.close()
    return report
