"""``shoal enqueue``: a URL list (or JSON lines) as request messages, with confirms."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiormq.channel import Channel

from shoal.core.errors import BrokerUnavailable, InputError
from shoal.core.inputs import parse_lines
from shoal.core.model import NewRequest
from shoal.queue._amqp import Topology, connect, declare_requests, publish_errors
from shoal.queue._frames import Outgoing, publish_batch

__all__ = ["EnqueueReport", "enqueue", "request_message"]

_BATCH = 500  # messages in one write
_WINDOW = 20_000  # messages awaiting their confirm at once
_CONFIRM_TIMEOUT = 60.0
_confirm_errors: tuple[type[BaseException], ...] = (TimeoutError, *publish_errors)
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
    and wait for the broker's confirms; bad lines are counted, not sent.

    Messages go out in batches of one write each, with many batches awaiting their
    confirms at once; ``BrokerUnavailable`` if the broker refuses one or goes away."""
    topology = topology or Topology()
    report = EnqueueReport()
    connection = await connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_requests(channel, topology)
        underlay = await channel.get_underlay_channel()
        assert isinstance(underlay, Channel)
        unconfirmed: deque[tuple[int, asyncio.Future[None]]] = deque()
        outstanding = 0

        async def confirmed(count: int, batch: asyncio.Future[None]) -> None:
            try:
                async with asyncio.timeout(_CONFIRM_TIMEOUT):
                    await batch
            except _confirm_errors as exc:
                raise BrokerUnavailable(f"the broker did not confirm a message: {exc}") from None
            report.published += count
            if on_published is not None:
                on_published(count)

        batch: list[Outgoing] = []

        async def send() -> None:
            nonlocal outstanding
            unconfirmed.append((len(batch), await publish_batch(underlay, "", batch)))
            outstanding += len(batch)
            batch.clear()
            while outstanding > _WINDOW:
                count, oldest = unconfirmed.popleft()
                outstanding -= count
                await confirmed(count, oldest)

        for item in parse_lines(lines):
            if isinstance(item, InputError):
                report.invalid += 1
                if len(report.errors) < SHOWN_ERRORS:
                    report.errors.append(item)
                continue
            batch.append(
                Outgoing(topology.requests, request_message(item, job=job), uuid.uuid4().hex)
            )
            if len(batch) >= _BATCH:
                await send()
        if batch:
            await send()
        while unconfirmed:
            await confirmed(*unconfirmed.popleft())
    finally:
        await connection.close()
    return report
