"""The broker side shared by the worker, ``--emit`` and ``shoal enqueue``: the connection
(robust: aio-pika reconnects it and declares the topology again) and the topology.

::

    REQUESTS (durable queue) ──▶ workers ──▶ RESULTS (durable topic exchange,
       │ poison, with x-shoal-reason          routing key = job)
       ▼                                         └──▶ RESULTS (durable queue, bound "#")
    REQUESTS.dead (durable queue)
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPError

from shoal.core.errors import BrokerUnavailable, ConfigError

__all__ = [
    "DEAD_SUFFIX",
    "REASON_HEADER",
    "BrokerUnavailable",
    "Topology",
    "check_broker_url",
    "connect",
    "declare_requests",
    "declare_results",
    "publish_errors",
]

log = logging.getLogger("shoal.queue")

DEAD_SUFFIX = ".dead"
"""The dead-letter queue of a requests queue is named after it with this suffix."""
REASON_HEADER = "x-shoal-reason"
"""The header of a dead-lettered message that says why it was rejected."""

RECONNECT_INTERVAL = 1.0
_CONNECT_TRIES = 8

publish_errors: tuple[type[BaseException], ...] = (AMQPError, OSError, RuntimeError)
"""What publishing raises while the broker is away (the robust connection comes back)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Topology:
    """The names of the queues and exchange a worker uses."""

    requests: str = "shoal.requests"
    results: str = "shoal.results"

    def __post_init__(self) -> None:
        for name in (self.requests, self.results):
            if not isinstance(name, str) or not name or len(name) > 200:
                raise ConfigError(f"a queue or exchange name must be 1-200 characters: {name!r}")

    @property
    def dead(self) -> str:
        return self.requests + DEAD_SUFFIX


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    from yarl import URL

    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return "the broker"
    return str(parsed.with_password(None)) if parsed.password else str(parsed)


def check_broker_url(url: str) -> None:
    """Raise ``ConfigError`` unless ``url`` is an AMQP URL."""
    if not url.startswith(("amqp://", "amqps://")):
        raise ConfigError(f"a broker URL starts with amqp:// or amqps://, got {_shown(url)!r}")


async def connect(url: str) -> AbstractRobustConnection:
    """A robust connection to ``url``, retried with exponential backoff at first (a broker
    that is starting); later drops are reconnected by aio-pika every second."""
    check_broker_url(url)
    delay = 0.25
    for attempt in range(1, _CONNECT_TRIES + 1):
        try:
            return await aio_pika.connect_robust(
                url, reconnect_interval=RECONNECT_INTERVAL, timeout=10
            )
        except (TimeoutError, AMQPError, OSError) as exc:
            if attempt == _CONNECT_TRIES:
                raise BrokerUnavailable(f"cannot reach {_shown(url)}: {exc}") from None
            log.info("broker %s unavailable (%s); retrying in %.1fs", _shown(url), exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)
    raise AssertionError("unreachable")


async def declare_requests(
    channel: AbstractChannel, topology: Topology
) -> tuple[AbstractQueue, AbstractQueue]:
    """The requests queue and its dead-letter queue (durable)."""
    dead = await channel.declare_queue(topology.dead, durable=True)
    requests = await channel.declare_queue(topology.requests, durable=True)
    return requests, dead


async def declare_results(channel: AbstractChannel, topology: Topology) -> AbstractExchange:
    """The results topic exchange, and a durable queue bound to every job on it, so that
    results published before any consumer subscribed are kept."""
    exchange = await channel.declare_exchange(
        topology.results, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(topology.results, durable=True)
    await queue.bind(exchange, routing_key="#")
    return exchange
