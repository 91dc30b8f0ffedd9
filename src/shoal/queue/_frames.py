"""Publishing and acking in batches on an aiormq channel: many messages, one write.

aio-pika (and aiormq's ``basic_publish``) send each message as its own write,
each awaiting its own drain and confirm, through several layers of objects. A
queue worker answers thousands of requests a second, so here a whole batch is
encoded at once (the AMQP frames are fixed but for the body and its length,
AMQP 0-9-1 section 4.2) and handed to the connection's writer as one payload;
each message gets a confirmation future from the channel, resolved by aiormq
when the broker confirms it (or failed when the channel closes).

The channel's lock is held while delivery tags are taken and the payload is
queued, as aiormq's own ``basic_publish`` does, so publishes through aio-pika on
the same channel keep their tags in step.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiormq.abc import ChannelFrame
from aiormq.channel import Channel

__all__ = ["Outgoing", "ack_batch", "ack_frames", "publish_batch", "publish_frames"]

_FRAME_METHOD = 1
_FRAME_HEADER = 2
_FRAME_BODY = 3
_FRAME_END = b"\xce"
_BASIC = 60
_PUBLISH = 40
_ACK = 80
# Basic property flags (content-type, delivery-mode, message-id).
_CONTENT_TYPE = 0x8000
_DELIVERY_MODE = 0x1000
_MESSAGE_ID = 0x0080
_PERSISTENT = 2
_JSON = b"application/json"

_frame_head = struct.Struct(">BHI")
_header_head = struct.Struct(">HHQH")
_ack_frame = struct.Struct(">BHIHHQB")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish: persistent JSON, with an optional ``message_id``."""

    routing_key: str
    body: bytes
    message_id: str | None = None


def _shortstr(text: str) -> bytes:
    data = text.encode()
    if len(data) > 255:
        raise ValueError(f"an AMQP short string is at most 255 bytes: {text[:40]!r}...")
    return bytes((len(data),)) + data


def _frame(kind: int, channel: int, payload: bytes) -> bytes:
    return _frame_head.pack(kind, channel, len(payload)) + payload + _FRAME_END


def publish_frames(
    channel_number: int, exchange: str, messages: Sequence[Outgoing], max_body: int
) -> bytes:
    """The frames of ``messages`` published to ``exchange``: method, header and body frames
    (bodies split at ``max_body``, the connection's frame size less the frame's overhead)."""
    parts: list[bytes] = []
    append = parts.append
    exchange_field = _shortstr(exchange)
    methods: dict[str, bytes] = {}
    json_props = _shortstr("application/json")
    for message in messages:
        method = methods.get(message.routing_key)
        if method is None:
            payload = (
                struct.pack(">HHH", _BASIC, _PUBLISH, 0)
                + exchange_field
                + _shortstr(message.routing_key)
                + b"\x00"
            )
            method = methods[message.routing_key] = _frame(_FRAME_METHOD, channel_number, payload)
        append(method)
        body = message.body
        if message.message_id is None:
            flags = _CONTENT_TYPE | _DELIVERY_MODE
            props = json_props + b"\x02"
        else:
            flags = _CONTENT_TYPE | _DELIVERY_MODE | _MESSAGE_ID
            props = json_props + b"\x02" + _shortstr(message.message_id)
        append(
            _frame(
                _FRAME_HEADER,
                channel_number,
                _header_head.pack(_BASIC, 0, len(body), flags) + props,
            )
        )
        for start in range(0, len(body), max_body):
            append(_frame(_FRAME_BODY, channel_number, body[start : start + max_body]))
    return b"".join(parts)


def ack_frames(channel_number: int, delivery_tags: Sequence[int]) -> bytes:
    """basic.ack frames for each of ``delivery_tags`` (not ``multiple``)."""
    pack = _ack_frame.pack
    # A basic.ack's payload: class, method, delivery tag (8 bytes), the bits (1 byte).
    return b"".join(
        pack(_FRAME_METHOD, channel_number, 13, _BASIC, _ACK, tag, 0) + _FRAME_END
        for tag in delivery_tags
    )


class _Tally:
    """Stands for one message of a batch in the channel's ``confirmations``, where aiormq
    keeps a future per delivery tag: it calls ``done``, ``cancelled``, ``set_result`` (the
    broker's ack) or ``set_exception`` (its nack) on it. One future per batch is cheaper
    than one per message, and a batch is acked or published again as a whole anyway."""

    __slots__ = ("_batch", "_remaining")

    def __init__(self, batch: asyncio.Future[None], count: int) -> None:
        self._batch = batch
        self._remaining = count

    def done(self) -> bool:
        return False  # a late confirm of a failed batch is counted, and ignored

    def cancelled(self) -> bool:
        return False

    def set_result(self, _frame: object) -> None:
        self._remaining -= 1
        if self._remaining == 0 and not self._batch.done():
            self._batch.set_result(None)

    def set_exception(self, exc: BaseException) -> None:
        if not self._batch.done():
            self._batch.set_exception(exc)


async def publish_batch(
    channel: Channel, exchange: str, messages: Sequence[Outgoing]
) -> asyncio.Future[None]:
    """Publish ``messages`` in one write. The future returned is done when the broker has
    confirmed every one of them; it fails if the broker refuses one, or if the channel
    closes first (then some may have arrived: publish them again, at least once). The
    channel must be in confirm mode."""
    if not channel.publisher_confirms:
        raise ValueError("publish_batch needs a channel with publisher confirms")
    if not messages:
        raise ValueError("publish_batch needs at least one message")
    payload = publish_frames(channel.number, exchange, messages, channel.max_content_size)
    # From the channel, so that it fails when the channel closes.
    batch: asyncio.Future[None] = channel.create_future()
    tally = _Tally(batch, len(messages))
    async with channel.lock:
        first = channel.delivery_tag + 1
        confirmations: dict[int, Any] = channel.confirmations
        for tag in range(first, first + len(messages)):
            confirmations[tag] = tally
        channel.delivery_tag += len(messages)
        try:
            # The lock keeps aiormq's own publishers from taking tags until this is queued.
            await channel.write_queue.put(ChannelFrame(payload=payload, should_close=False))
        except BaseException:
            # Not queued, so the broker never sees these tags: give them back.
            channel.delivery_tag = first - 1
            for tag in range(first, first + len(messages)):
                confirmations.pop(tag, None)
            batch.cancel()
            raise
    return batch


async def ack_batch(channel: Channel, delivery_tags: Sequence[int]) -> None:
    """Ack ``delivery_tags`` of ``channel`` in one write (nothing if it is closed: the
    broker delivers those messages again)."""
    if not delivery_tags or channel.is_closed:
        return
    frame = ChannelFrame(payload=ack_frames(channel.number, delivery_tags), should_close=False)
    await channel.write_queue.put(frame)
