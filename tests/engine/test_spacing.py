"""SendSpacing on its own, on a fake clock: requests to one host go one gap apart, in the
order they ask, counted from when each really went."""

from __future__ import annotations

import asyncio
import time

from shoal.core.config import CrawlConfig, Politeness
from shoal.core.model import Request
from shoal.core.urls import canonical_host
from shoal.engine.clock import FakeClock
from shoal.engine.fetch.fetcher import Fetcher, make_session
from shoal.engine.fetch.spacing import HostRoutes, SendSpacing, marks_sends, send_in_turn
from shoal.testweb import SiteSpec, TestWeb


async def test_requests_to_one_host_take_turns_a_gap_apart() -> None:
    clock = FakeClock(start=100.0)
    spacing = SendSpacing(clock)
    sent: list[tuple[str, int, float]] = []

    async def send(host: str, n: int, gap: float) -> None:
        await spacing.wait_turn(host, gap)
        sent.append((host, n, clock.monotonic()))

    async with asyncio.TaskGroup() as tasks:
        for n in range(4):
            tasks.create_task(send("a.test", n, 0.5))
        tasks.create_task(send("b.test", 0, 0.0))
        tasks.create_task(send("c.test", 0, 30.0))
    assert [(host, n, t) for host, n, t in sent if host == "a.test"] == [
        ("a.test", 0, 100.0),
        ("a.test", 1, 100.5),
        ("a.test", 2, 101.0),
        ("a.test", 3, 101.5),
    ]
    assert ("b.test", 0, 100.0) in sent  # no delay: never held
    assert ("c.test", 0, 100.0) in sent  # its first request goes at once


async def test_the_gap_counts_from_when_the_last_one_went() -> None:
    clock = FakeClock(start=0.0)
    spacing = SendSpacing(clock)
    await spacing.wait_turn("a.test", 2.0)
    clock.advance(5.0)  # long after: the next goes at once
    await spacing.wait_turn("a.test", 2.0)
    assert clock.monotonic() == 5.0
    await spacing.wait_turn("a.test", 2.0)
    assert clock.monotonic() == 7.0


async def test_a_turn_is_held_until_its_request_goes() -> None:
    # The next request to the host waits for this one to really go (a slow connect, a
    # busy loop), then one gap more: the gap counts from the send, not from the turn.
    clock = FakeClock(start=0.0)
    spacing = SendSpacing(clock)
    first = await spacing.take_turn("a.test", 1.0)
    assert first is not None
    second_went: list[float] = []

    async def second() -> None:
        await spacing.wait_turn("a.test", 1.0)
        second_went.append(clock.monotonic())

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(second())
        await clock.sleep(3.0)  # the first request is still connecting
        assert second_went == []
        await first.go()
        await first.go()  # only the first call counts
    assert second_went == [4.0]


async def test_a_turn_given_up_is_not_a_send() -> None:
    clock = FakeClock(start=0.0)
    spacing = SendSpacing(clock)
    await spacing.wait_turn("a.test", 1.0)  # went at 0
    clock.advance(0.2)
    turn = await spacing.take_turn("a.test", 1.0)
    assert turn is not None and clock.monotonic() == 1.0
    turn.give_up()  # refused before a byte went
    turn.give_up()
    await spacing.wait_turn("a.test", 1.0)
    assert clock.monotonic() == 1.0  # still one gap after the send at 0


async def test_a_turn_counts_from_a_send_of_another_sender() -> None:
    clock = FakeClock(start=10.0)
    spacing = SendSpacing(clock)
    await spacing.wait_turn("a.test", 0.5)  # this sender's own last send: at 10
    turn = await spacing.take_turn("a.test", 0.5, after=12.0)
    assert turn is not None and clock.monotonic() == 12.5
    await turn.go()


def test_a_host_moves_to_another_sender_only_between_requests() -> None:
    clock = FakeClock(start=0.0)
    routes: HostRoutes[str] = HostRoutes(clock)
    alive = {"local", "one", "two"}
    is_alive = alive.__contains__
    assert routes.take("a.test", 0.5, "local", is_alive) == ("local", float("-inf"))
    # A child is ready now, but the host has a request in flight here: it stays.
    assert routes.take("a.test", 0.5, "one", is_alive) == ("local", float("-inf"))
    clock.advance(1.0)
    routes.done("a.test", "local")
    clock.advance(1.0)
    routes.done("a.test", "local")  # answered at 2.0: every request of it went before
    clock.advance(0.1)
    assert routes.take("a.test", 0.5, "one", is_alive) == ("one", 2.0)
    assert routes.take("a.test", 0.5, "one", is_alive) == ("one", float("-inf"))
    # Its sender died with requests in flight: they all went before now, if at all.
    alive.discard("one")
    clock.advance(0.3)
    assert routes.take("a.test", 0.5, "two", is_alive) == ("two", 2.4)
    routes.done("a.test", "one")  # the dead sender's requests no longer count
    routes.done("a.test", "one")
    assert routes.take("a.test", 0.5, "two", is_alive) == ("two", float("-inf"))
    assert routes.take("b.test", 0.5, "two", is_alive) == ("two", float("-inf"))


async def test_an_aiohttp_session_with_the_send_trace_ends_the_turn_as_it_writes() -> None:
    config = CrawlConfig(politeness=Politeness(delay=0.3))
    spacing = SendSpacing()
    async with TestWeb(SiteSpec(hosts=1, pages=5)) as web, make_session(config) as session:
        assert marks_sends(session)
        fetcher = Fetcher(session, config)
        assert fetcher.marks_send
        went: list[float] = []
        for n in range(2):
            url = web.url(0, f"/page/{n}")
            request = Request(id=n, url=url, host=canonical_host(url))
            turn = await spacing.take_turn(request.host, 0.3)
            before = time.monotonic()
            attempt = await send_in_turn(turn, True, lambda r=request: fetcher.fetch(r))
            assert attempt.result.status == 200
            went.append(before)
        starts = sorted(record.start for record in web.stats().hosts[0].log)
    # Each turn ended at the write, between the call and the server reading it: the second
    # request waited for the first one's send, then the gap.
    assert went[1] >= starts[0] + 0.3
    async with make_session(CrawlConfig()) as plain:
        assert not marks_sends(plain)  # no delay: no request pays for the trace


async def test_a_later_send_moves_the_next_turn() -> None:
    """A client that sends from its own thread reports when the request went at the latest
    (its response's first byte): the next turn counts from then, never from earlier."""
    clock = FakeClock(start=0.0)
    spacing = SendSpacing(clock)
    await spacing.wait_turn("a.test", 2.0)  # its turn at 0.0; the thread sent it by 1.5
    spacing.sent_by("a.test", 1.5)
    spacing.sent_by("a.test", 0.5)  # an earlier bound changes nothing
    spacing.sent_by("b.test", 9.0)  # a host without a turn yet is not remembered
    await spacing.wait_turn("a.test", 2.0)
    assert clock.monotonic() == 3.5
    await spacing.wait_turn("b.test", 2.0)
    assert clock.monotonic() == 3.5
