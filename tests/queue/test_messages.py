"""Request messages: fetch orders, crawl orders, and poison with its reason."""

from __future__ import annotations

import json

import pytest

from shoal.core.errors import InputError
from shoal.queue import MAX_MESSAGE_BYTES, CrawlOrder, RequestOrder, parse_order
from shoal.queue._enqueue import request_message
from shoal.queue._messages import request_id_of


def test_a_fetch_order_is_a_json_input_line_plus_job_and_meta() -> None:
    body = {
        "url": "HTTP://Example.COM/a?b=1",
        "method": "post",
        "headers": {"Accept": "application/json"},
        "body": "{}",
        "job": "harvest",
        "meta": {"id": [1, 2]},
    }
    order = parse_order(json.dumps(body).encode())
    assert isinstance(order, RequestOrder)
    assert order.request.url == "http://example.com/a?b=1"
    assert order.request.method == "POST"
    assert order.request.headers == (("Accept", "application/json"),)
    assert order.request.body == b"{}"
    assert (order.job, order.meta) == ("harvest", {"id": [1, 2]})


def test_a_crawl_order_takes_crawl_settings() -> None:
    order = parse_order(b'{"crawl": {"seeds": ["http://a.test/"], "depth": 2}, "job": "c"}')
    assert isinstance(order, CrawlOrder)
    from shoal.core.jobspec import JobSpec

    spec = order.spec(JobSpec.fetch())
    assert (spec.kind, spec.seeds, spec.depth) == ("crawl", ("http://a.test/",), 2)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"meta": 1}', "missing 'url'"),
        (b'{"url": "ftp://example.com/"}', "scheme"),
        (b'{"url": "http://a.test/", "colour": 1}', "unknown key 'colour'"),
        (b'{"url": "http://a.test/", "job": ""}', "'job'"),
        (b'{"crawl": {"seeds": ["http://a.test/"], "speed": 9}}', "unknown setting 'speed'"),
        (b"[" * 100_000, "too large"),
        (b'{"url": "http://a.test/' + b"a" * MAX_MESSAGE_BYTES + b'"}', "too large"),
    ],
)
def test_poison_is_refused_with_a_one_line_reason(body: bytes, reason: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_order(body)
    assert reason in caught.value.reason
    assert "\n" not in caught.value.reason


def test_a_request_id_is_the_message_id_else_a_hash_of_the_body() -> None:
    assert request_id_of("m-1", b"x") == "m-1"
    assert request_id_of(None, b"x") == request_id_of("", b"x") != request_id_of(None, b"y")


def test_enqueued_messages_parse_back_to_the_same_request() -> None:
    line = b'{"url": "http://a.test/x", "method": "PUT", "headers": [["A", "1"]], "body": "b"}'
    original = parse_order(line)
    assert isinstance(original, RequestOrder)
    again = parse_order(request_message(original.request, job="j"))
    assert isinstance(again, RequestOrder)
    assert again.request == original.request and again.job == "j"


def test_credentials_in_a_url_become_its_authorization_header() -> None:
    order = parse_order(b'{"url": "http://user:pw@a.test/x"}')
    assert isinstance(order, RequestOrder)
    assert order.request.url == "http://a.test/x"
    assert [name for name, _ in order.request.headers] == ["Authorization"]
