"""A queue worker's way out: result messages published in batches, requests acked once
their results are confirmed, poison moved to the dead-letter queue.

``answer`` only queues a result; the ``Answerer``'s loop publishes all that is
queued as one batch in one write, and many batches await their publisher
confirms at once. A batch's requests are acked together, in one write, once
the broker has confirmed every result in it; a batch it did not wholly confirm
is published again, message by message, until it is (at least once on the
results exchange; the request stays unacked, so delivered again, until then).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from aiormq.channel import Channel

from shoal.core.model import FetchResult
from shoal.queue._amqp import REASON_HEADER, publish_errors
from shoal.queue._frames import Outgoing, ack_batch, publish_batch
from shoal.queue._messages import CrawlOrder, RequestOrder, result_body

__all__ = ["BROKER_WAIT", "Answerer", "Delivery", "settled"]

log = logging.getLogger("shoal.queue")

BROKER_WAIT = 10.0
"""Seconds to settle a delivery, cancel a consumer or close the connection, at most."""
_BATCHES = 64  # batches of result messages awaiting their confirms at once
_CONFIRM_TIMEOUT = 30.0
_unconfirmed: tuple[type[BaseException], ...] = (TimeoutError, *publish_errors)
_MAX_REASON = 500


@dataclass(eq=False, slots=True)
class Delivery:
    """A request message taken off the queue, with the order it carries."""

    message: AbstractIncomingMessage
    order: RequestOrder | CrawlOrder
    request_id: str
    publishing: int = 0
    published: asyncio.Event | None = None  # made by whoever waits for ``publishing`` to end


@dataclass(frozen=True, slots=True)
class _Answer:
    """A result to publish for a delivery; ``ack``: the delivery is acked once it is
    confirmed (a crawl order's pages are not: the order is acked when its crawl ends)."""

    delivery: Delivery
    result: FetchResult
    job: str
    ack: bool


class Answerer:
    """Publishes the results ``answer`` is given on ``channel`` (in confirm mode) to the
    results exchange named ``results``, and acks their requests. ``stats`` is the worker's
    tally (``answered``, ``results``, ``dead_lettered``); ``on_acked`` is called for each
    request acked (or left to the broker to deliver again, its channel gone)."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        channel: AbstractChannel,
        exchange: AbstractExchange,
        *,
        results: str,
        dead: str,
        stats: dict[str, int],
        on_acked: Callable[[], None],
    ) -> None:
        self._connection = connection
        self._channel = channel
        self._exchange = exchange
        self._results = results
        self._dead = dead
        self._stats = stats
        self._on_acked = on_acked
        self._outbox: list[_Answer] = []
        self._answerable = asyncio.Event()
        self._unanswered = 0  # answers given and not yet confirmed (or given up)
        self._answered_all = asyncio.Event()
        self._answered_all.set()
        self._batches = asyncio.Semaphore(_BATCHES)

    def answer(self, delivery: Delivery, result: FetchResult, job: str, ack: bool = True) -> None:
        """Queue ``result`` as the answer to ``delivery`` (published on a later turn)."""
        delivery.publishing += 1
        self._unanswered += 1
        self._answered_all.clear()
        self._outbox.append(_Answer(delivery, result, job, ack))
        self._answerable.set()

    async def wait_answered(self) -> None:
        """Until every answer given so far is confirmed (or given up)."""
        while self._unanswered > 0:
            self._answered_all.clear()
            await self._answered_all.wait()

    async def run(self, tasks: asyncio.TaskGroup) -> None:
        """Publish what ``answer`` queued, a batch (all that is waiting) at a time in one
        write; each batch awaits its confirms in a task of ``tasks`` (``_confirm``)."""
        exchange = self._results
        while True:
            await self._answerable.wait()
            self._answerable.clear()
            await self._batches.acquire()
            answers, self._outbox = self._outbox, []
            if not answers:
                self._batches.release()
                continue
            outgoing = [
                Outgoing(
                    answer.job,
                    result_body(
                        answer.result,
                        job=answer.job,
                        meta=answer.delivery.order.meta,
                        request_id=answer.delivery.request_id,
                    ),
                )
                for answer in answers
            ]
            confirmed: asyncio.Future[None] | None
            try:
                channel = await self._channel.get_underlay_channel()
                assert isinstance(channel, Channel)
                confirmed = await publish_batch(channel, exchange, outgoing)
            except publish_errors as exc:
                log.info("publishing a batch failed (%s); publishing one by one", exc)
                confirmed = None
            tasks.create_task(self._confirm(answers, outgoing, confirmed))

    async def _confirm(
        self,
        answers: list[_Answer],
        outgoing: list[Outgoing],
        confirmed: asyncio.Future[None] | None,
    ) -> None:
        """Wait for a batch's confirms, then ack its requests in one write; an answer the
        broker did not confirm is published again (``publish`` waits out a broker away)."""
        try:
            failed = confirmed is None or not await _confirmed(confirmed)
            acks: dict[Channel, list[int]] = {}
            stats = self._stats
            for answer, message in zip(answers, outgoing, strict=True):
                if failed:
                    await self.publish(
                        self._exchange, message.body, routing_key=message.routing_key
                    )
                if not answer.ack:
                    stats["results"] += 1
                    continue
                try:
                    channel = answer.delivery.message.channel
                except publish_errors:
                    pass  # its channel is gone: the broker delivers the request again
                else:
                    assert isinstance(channel, Channel)
                    acks.setdefault(channel, []).append(answer.delivery.message.delivery_tag or 0)
                stats["answered"] += 1
                self._on_acked()
            for channel, tags in acks.items():
                with contextlib.suppress(*publish_errors):
                    await ack_batch(channel, tags)
        finally:
            self._batches.release()
            for answer in answers:
                delivery = answer.delivery
                delivery.publishing -= 1
                if delivery.published is not None:
                    delivery.published.set()
            self._unanswered -= len(answers)
            if self._unanswered <= 0:
                self._answered_all.set()

    async def publish(
        self,
        exchange: AbstractExchange,
        body: bytes,
        *,
        routing_key: str,
        headers: dict[str, Any] | None = None,
    ) -> None:
        """Publish and wait for the broker's confirm; while the broker is away, wait for the
        connection to come back and publish again."""
        delay = 0.25
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=headers,
        )
        while True:
            try:
                await exchange.publish(message, routing_key=routing_key, timeout=30)
                return
            except publish_errors as exc:  # a TimeoutError (no confirm in time) too
                log.info("publishing failed (%s); trying again in %.2fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            await self._connection.connected.wait()

    async def dead_letter(self, message: AbstractIncomingMessage, reason: str) -> None:
        """Move a message the worker will not process to the dead-letter queue, with why."""
        headers: dict[str, Any] = dict(message.headers or {})
        headers[REASON_HEADER] = reason[:_MAX_REASON]
        if message.message_id:
            headers.setdefault("x-shoal-message-id", message.message_id)
        await self.publish(
            self._channel.default_exchange, message.body, routing_key=self._dead, headers=headers
        )
        await settled(message.ack())
        self._stats["dead_lettered"] += 1
        log.info("dead-lettered a message: %s", reason)


async def _confirmed(batch: asyncio.Future[None]) -> bool:
    """Whether the broker confirmed a whole batch within ``_CONFIRM_TIMEOUT`` (not: it
    refused a message, the channel closed, or no answer)."""
    try:
        async with asyncio.timeout(_CONFIRM_TIMEOUT):
            await batch
    except _unconfirmed:
        return False
    return True


async def settled(settling: Awaitable[object]) -> None:
    """Ack or nack a delivery, within a bounded time; a delivery whose channel is gone
    (the connection dropped) is settled by the broker itself: it delivers it again."""
    with contextlib.suppress(*publish_errors):  # TimeoutError included
        async with asyncio.timeout(BROKER_WAIT):
            await settling
