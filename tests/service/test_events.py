"""The event hub: bounded per client, never waits for one, closes one that stays behind."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from shoal.core.model import FetchResult
from shoal.service._events import EventHub, HubLimits, TooSlow
from shoal.service._frames import text_frame


def results(start: int, count: int) -> list[FetchResult]:
    return [
        FetchResult(request_id=n, url=f"http://a.test/{n}", status=200, elapsed_ms=1.0)
        for n in range(start, start + count)
    ]


def kinds(texts: list[str]) -> list[str]:
    return [json.loads(t)["type"] for t in texts]


async def test_a_client_gets_pages_states_and_the_latest_progress() -> None:
    hub = EventHub(HubLimits(queue=10, page_rate=0))
    mine, other, everything = hub.subscribe("a"), hub.subscribe("b"), hub.subscribe(None)
    hub.publish_state("a", "running")
    hub.publish_pages("a", results(1, 3))
    hub.publish_progress("a", {"finished": 1})
    hub.publish_progress("a", {"finished": 3})
    sent = mine.take()
    assert kinds(sent) == ["state", "page", "page", "page", "progress"]
    assert json.loads(sent[-1])["finished"] == 3
    assert [json.loads(t)["url"] for t in sent[1:4]] == [f"http://a.test/{n}" for n in (1, 2, 3)]
    assert other.take() == []
    assert len(everything.take()) == 5
    assert hub.clients == 3


async def test_a_lagging_client_gets_progress_and_a_dropped_count_then_pages_again() -> None:
    hub = EventHub(HubLimits(queue=5, max_strikes=3, page_rate=0))
    slow = hub.subscribe("a")
    hub.publish_pages("a", results(1, 4))
    hub.publish_pages("a", results(5, 4))  # overflows: 8 buffered would pass 5
    hub.publish_pages("a", results(9, 2))  # dropped while lagging
    hub.publish_progress("a", {"finished": 10})
    sent = slow.take()
    assert kinds(sent) == ["progress", "dropped"]
    assert json.loads(sent[-1])["count"] == 10
    slow.caught_up()
    hub.publish_pages("a", results(11, 1))
    assert kinds(slow.take()) == ["page"]


async def test_a_client_that_keeps_falling_behind_is_closed_with_a_reason() -> None:
    hub = EventHub(HubLimits(queue=2, max_strikes=3, page_rate=0))
    slow = hub.subscribe(None)
    for round_ in range(3):
        hub.publish_pages("a", results(round_ * 10, 3))
        slow.take()
        slow.caught_up()
    assert slow.kicked is not None and "fell behind 3 times" in slow.kicked

    async def never(_text: str) -> None:
        raise AssertionError("a kicked client is sent nothing")

    with pytest.raises(TooSlow) as closed:
        await slow.pump(never)
    assert closed.value.reason == slow.kicked


async def test_a_send_blocked_too_long_closes_the_client_and_publishing_never_waits() -> None:
    hub = EventHub(HubLimits(queue=100, send_timeout=0.2, page_rate=0))
    stuck = hub.subscribe("a")
    unblock = asyncio.Event()
    sends = 0

    async def blocked(_text: str) -> None:
        nonlocal sends
        sends += 1
        await unblock.wait()

    pump = asyncio.ensure_future(stuck.pump(blocked))
    hub.publish_pages("a", results(1, 1))
    # Publishing goes on while the client's send is stuck: bounded, and never awaited.
    for start in range(0, 10_000, 100):
        hub.publish_pages("a", results(start, 100))
    assert stuck.lagging and stuck.dropped_total > 9_000
    with pytest.raises(TooSlow) as closed:
        await pump
    assert "blocked" in closed.value.reason
    assert sends == 1


async def test_all_clients_together_get_at_most_the_page_rate() -> None:
    now = [0.0]
    hub = EventHub(HubLimits(queue=100, page_rate=200), clock=lambda: now[0])
    first, second = hub.subscribe(None), hub.subscribe(None)
    now[0] += 5  # a bucket holds one second's share (100 each), however long it waited
    hub.publish_pages("a", results(0, 150))
    assert kinds(first.take()) == ["page"] * 100  # a skipped page costs no message
    second.take()
    now[0] += 0.5  # each client's share: 100 a second, so 50 more now
    hub.publish_pages("a", results(100, 80))
    hub.publish_progress("a", {"finished": 230})
    sent = first.take()
    assert kinds(sent) == ["page"] * 50 + ["progress"]
    assert json.loads(sent[-1])["skipped"] == 50 + 30  # the job's pages skipped so far
    assert not first.lagging and first.kicked is None  # over its share is not a strike
    now[0] += 10
    hub.publish_pages("a", results(200, 5))
    assert kinds(first.take()) == ["page"] * 5
    pages = [json.loads(t) for t in second.take()]
    assert [p["id"] for p in pages if p["type"] == "page"] == [*range(100, 150), *range(200, 205)]


async def test_over_the_rate_every_client_gets_the_same_pages_encoded_once() -> None:
    now = [0.0]
    hub = EventHub(HubLimits(queue=100, page_rate=1000), clock=lambda: now[0])
    watchers = [hub.subscribe(None) for _ in range(999)] + [hub.subscribe("a")]
    elsewhere = hub.subscribe("b")  # 1,001 clients: a share under one page a second
    now[0] += 2
    hub.publish_pages("a", results(0, 200))
    hub.publish_progress("a", {"finished": 200})
    sent = [w.take() for w in watchers]
    assert all(kinds(texts) == ["page", "progress"] for texts in sent)
    assert all(texts[0] is sent[0][0] for texts in sent)  # one text for all, not one each
    assert all(texts[1] is sent[0][1] for texts in sent)
    assert json.loads(sent[0][1])["skipped"] == 199
    assert elsewhere.take() == []  # another job's pages are not its to see
    hub.publish_pages("a", results(200, 50))  # no time passed: nothing to send
    assert all(w.take() == [] for w in watchers)
    hub.publish_pages("b", results(300, 5))
    hub.publish_progress("b", {"finished": 5})
    assert kinds(watchers[-1].take()) == []
    assert json.loads(elsewhere.take()[0])["skipped"] == 5
    hub.publish_state("a", "deleted")
    hub.publish_progress("a", {"finished": 0})  # a job of the same name starts afresh
    assert json.loads(watchers[-1].take()[-1])["skipped"] == 0


async def test_a_state_comes_after_the_pages_before_it_and_the_jobs_last_progress() -> None:
    hub = EventHub(HubLimits(queue=10, page_rate=0))
    watcher = hub.subscribe(None)
    hub.publish_pages("a", results(1, 2))
    hub.publish_progress("a", {"finished": 2})
    hub.publish_progress("b", {"finished": 7})
    hub.publish_state("a", "finished")
    hub.publish_pages("b", results(3, 1))
    sent = [json.loads(t) for t in watcher.take()]
    assert [(m["type"], m["job"]) for m in sent] == [
        ("page", "a"),
        ("page", "a"),
        ("progress", "a"),
        ("state", "a"),
        ("page", "b"),
        ("progress", "b"),  # another job's latest tick stays last
    ]


async def test_a_client_that_never_reads_keeps_its_latest_states_only() -> None:
    hub = EventHub(HubLimits(queue=10, page_rate=0))
    idle = hub.subscribe("a")
    for n in range(300):
        hub.publish_state("a", f"s{n}")
    states = [json.loads(t)["state"] for t in idle.take()]
    assert states == [f"s{n}" for n in range(44, 300)]


async def test_the_hub_writes_each_client_about_as_often_as_it_is_given_a_page() -> None:
    hub = EventHub(HubLimits(page_rate=1000, flush_interval=0.05))
    assert hub.write_interval() == 0.05
    for _ in range(200):
        hub.subscribe(None)
    assert hub.write_interval() == pytest.approx(0.2)  # a page each every 0.2 s
    for _ in range(2000):
        hub.subscribe(None)
    assert hub.write_interval() == 1.0  # and at least a progress tick a second
    assert EventHub(HubLimits(page_rate=0, flush_interval=0)).write_interval() == 0


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536, 200_000])
def test_a_text_frame_is_what_a_websocket_client_parses(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)  # ``size`` bytes of UTF-8
    assert len(text.encode()) == size
    reader = StreamReader()
    reader.feed_data(text_frame(text))
    parsing = Frame.parse(reader.read_exact, mask=False)
    with pytest.raises(StopIteration) as parsed:
        next(parsing)
    frame = parsed.value.value
    assert frame.opcode is Opcode.TEXT and frame.fin
    assert bytes(frame.data).decode() == text
    assert not reader.buffer  # the frame was all there was
