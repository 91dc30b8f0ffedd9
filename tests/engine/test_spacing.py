"""SendSpacing on its own, on a fake clock: requests to one host go one gap apart, in the
order they ask, counted from when each really went."""

from __future__ import annotations

import asyncio

from shoal.engine.clock import FakeClock
from shoal.engine.spacing import SendSpacing


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
