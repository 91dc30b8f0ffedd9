"""The batch publisher's AMQP frames are the ones pamqp (aiormq's codec) writes."""

from __future__ import annotations

import pamqp.frame
from pamqp import commands
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from shoal.queue._frames import Outgoing, ack_frames, publish_frames


def _pamqp_publish(channel: int, exchange: str, message: Outgoing, max_body: int) -> bytes:
    properties = commands.Basic.Properties(
        content_type="application/json", delivery_mode=2, message_id=message.message_id
    )
    frames: list[object] = [
        commands.Basic.Publish(exchange=exchange, routing_key=message.routing_key),
        ContentHeader(properties=properties, body_size=len(message.body)),
    ]
    body = message.body
    frames += [ContentBody(body[i : i + max_body]) for i in range(0, len(body), max_body)]
    return b"".join(pamqp.frame.marshal(frame, channel) for frame in frames)  # type: ignore[arg-type]


def test_publish_frames_match_pamqp() -> None:
    messages = [
        Outgoing("harvest", b'{"url":"http://a/"}'),
        Outgoing("shoal.requests", '{"é":1}'.encode() * 30, message_id="c0ffee"),
        Outgoing("harvest", b""),
        Outgoing("harvest", b"x" * 100),
    ]
    max_body = 64
    got = publish_frames(7, "shoal.results", messages, max_body)
    assert got == b"".join(_pamqp_publish(7, "shoal.results", m, max_body) for m in messages)


def test_publish_frames_decode_with_pamqp() -> None:
    data = publish_frames(3, "", [Outgoing("q", b"hello", message_id="id-1")], 1000)
    consumed, channel, method = pamqp.frame.unmarshal(data)
    assert channel == 3 and isinstance(method, commands.Basic.Publish)
    assert (method.exchange, method.routing_key) == ("", "q")
    data = data[consumed:]
    consumed, _, header = pamqp.frame.unmarshal(data)
    assert isinstance(header, ContentHeader)
    assert header.body_size == 5
    assert header.properties.message_id == "id-1"
    assert header.properties.delivery_mode == 2
    _, _, body = pamqp.frame.unmarshal(data[consumed:])
    assert isinstance(body, ContentBody) and body.value == b"hello"


def test_ack_frames_match_pamqp() -> None:
    tags = [1, 2, 2**40 + 5]
    expected = b"".join(pamqp.frame.marshal(commands.Basic.Ack(delivery_tag=t), 9) for t in tags)
    assert ack_frames(9, tags) == expected
