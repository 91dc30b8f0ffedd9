"""``--emit``: every result, as it is committed, to a topic exchange (routing key: the job)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustConnection

from shoal.core.model import FetchResult
from shoal.queue._amqp import connect, publish_errors
from shoal.queue._messages import result_body

__all__ = ["EMIT_EXCHANGE", "ResultEmitter"]

log = logging.getLogger("shoal.queue")

EMIT_EXCHANGE = "shoal.results"
_PUBLISHERS = 32


class ResultEmitter:
    """Publishes results with publisher confirms, off the caller's path: ``emit`` queues
    them (never blocks); ``close`` waits until every queued result is confirmed.

    The exchange is declared (durable, topic); binding queues to it is the consumers'
    business: results published while none is bound are dropped by the broker."""

    def __init__(self, url: str, *, exchange: str = EMIT_EXCHANGE) -> None:
        self._url = url
        self._exchange_name = exchange
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._outbox: asyncio.Queue[tuple[str, FetchResult]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.published = 0

    async def open(self) -> None:
        self._connection = await connect(self._url)
        channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await channel.declare_exchange(
            self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        # Owned by this emitter from open() to close(), which always ends them.
        self._tasks = [
            asyncio.create_task(self._publisher(), name=f"shoal-emit-{i}")
            for i in range(_PUBLISHERS)
        ]

    def emit(self, job: str, results: Sequence[FetchResult]) -> None:
        for result in results:
            self._outbox.put_nowait((job, result))

    async def close(self) -> None:
        try:
            if self._tasks:
                await self._outbox.join()
        finally:
            for task in self._tasks:
                task.cancel()
            # The publishers' own cancellations are collected; one of close() is not.
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._connection is not None:
                with contextlib.suppress(Exception):
                    await self._connection.close()

    async def _publisher(self) -> None:
        outbox = self._outbox
        while True:
            job, result = await outbox.get()
            try:
                body = result_body(result, job=job, meta=None, request_id=str(result.request_id))
                message = aio_pika.Message(
                    body,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                )
                delay = 0.25
                while True:
                    assert self._exchange is not None
                    try:
                        await self._exchange.publish(message, routing_key=job, timeout=30)
                        break
                    except publish_errors as exc:  # a TimeoutError (no confirm in time) too
                        log.info("emitting failed (%s); trying again in %.2fs", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    if self._connection is not None:
                        await self._connection.connected.wait()
                self.published += 1
            finally:
                outbox.task_done()
