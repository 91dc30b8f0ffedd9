"""RabbitMQ at shoal's edge (aio-pika): queue-fed workers, result streams, enqueueing.

``QueueWorker`` consumes request messages and answers each with a result
message once its result is committed to the store (docs/queues.md states the
delivery contract); ``ResultEmitter`` publishes every result of a run as it
lands (``--emit``); ``enqueue`` publishes a list of URLs as request messages.
"""

from shoal.queue._amqp import DEAD_SUFFIX, REASON_HEADER, BrokerUnavailable, Topology
from shoal.queue._emit import EMIT_EXCHANGE, ResultEmitter
from shoal.queue._enqueue import enqueue
from shoal.queue._messages import MAX_MESSAGE_BYTES, CrawlOrder, RequestOrder, parse_order
from shoal.queue._worker import QueueStats, QueueWorker

__all__ = [
    "BrokerUnavailable",
    "CrawlOrder",
    "DEAD_SUFFIX",
    "EMIT_EXCHANGE",
    "MAX_MESSAGE_BYTES",
    "QueueStats",
    "QueueWorker",
    "REASON_HEADER",
    "RequestOrder",
    "ResultEmitter",
    "Topology",
    "enqueue",
    "parse_order",
]
