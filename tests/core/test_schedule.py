"""The host scheduler's invariants: per-host concurrency, start spacing, fairness."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.core.schedule import HostScheduler


@dataclass(frozen=True)
class Req:
    host: str
    n: int


def test_round_robin_across_hosts() -> None:
    sched: HostScheduler[Req] = HostScheduler(per_host=10)
    for i in range(3):
        sched.push(Req("big", i), 0.0)
    sched.push(Req("small", 0), 0.0)
    order = [sched.pop(0.0) for _ in range(4)]
    assert [r.host for r in order if r] == ["big", "small", "big", "big"]
    assert sched.pop(0.0) is None
    assert len(sched) == 0 and sched.in_flight == 4


def test_per_host_limit_holds_until_finish() -> None:
    sched: HostScheduler[Req] = HostScheduler(per_host=2)
    for i in range(5):
        sched.push(Req("a", i), 0.0)
    assert sched.pop(0.0) == Req("a", 0)
    assert sched.pop(0.0) == Req("a", 1)
    assert sched.pop(0.0) is None
    sched.finish("a", 0.0)
    assert sched.pop(0.0) == Req("a", 2)


def test_delay_spaces_starts_and_reports_wakeup() -> None:
    sched: HostScheduler[Req] = HostScheduler(per_host=5, delay=1.5)
    for i in range(3):
        sched.push(Req("a", i), 10.0)
    assert sched.pop(10.0) == Req("a", 0)
    assert sched.pop(10.0) is None
    assert sched.next_wakeup() == pytest.approx(11.5)
    assert sched.pop(11.4) is None
    assert sched.pop(11.5) == Req("a", 1)


def test_host_delay_override_and_pause() -> None:
    sched: HostScheduler[Req] = HostScheduler(per_host=5)
    sched.set_host_delay("slow", 2.0)
    sched.push(Req("slow", 0), 0.0)
    sched.push(Req("slow", 1), 0.0)
    sched.push(Req("fast", 0), 0.0)
    sched.push(Req("fast", 1), 0.0)
    got = {sched.pop(0.0), sched.pop(0.0), sched.pop(0.0)}
    assert got == {Req("slow", 0), Req("fast", 0), Req("fast", 1)}
    sched.pause_host("fast", 30.0, 0.0)
    sched.push(Req("fast", 2), 0.0)
    assert sched.pop(2.0) == Req("slow", 1)
    assert sched.pop(29.0) is None
    assert sched.pop(30.0) == Req("fast", 2)


def test_drain_returns_everything_queued() -> None:
    sched: HostScheduler[Req] = HostScheduler(per_host=1)
    for i in range(4):
        sched.push(Req(f"h{i % 2}", i), 0.0)
    first = sched.pop(0.0)
    drained = sched.drain()
    assert len(drained) == 3 and first not in drained
    assert len(sched) == 0 and sched.pop(0.0) is None
    assert first is not None
    sched.finish(first.host, 1.0)  # in-flight work may still finish after a drain
    assert sched.host_count == 0


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    per_host=st.integers(1, 4),
    delay=st.sampled_from([0.0, 0.05, 0.3]),
    hosts=st.integers(1, 6),
    n=st.integers(1, 120),
)
def test_invariants_under_random_workload(
    seed: int, per_host: int, delay: float, hosts: int, n: int
) -> None:
    """Simulated clock: random pushes, pops and finishes never break a limit, and
    every request is eventually handed out exactly once."""
    rng = random.Random(seed)
    sched: HostScheduler[Req] = HostScheduler(per_host=per_host, delay=delay)
    now = 0.0
    pending = [Req(f"h{rng.randrange(hosts)}", i) for i in range(n)]
    in_flight: list[Req] = []
    last_start: dict[str, float] = {}
    running: dict[str, int] = {}
    handed: list[Req] = []
    for _ in range(20 * n + 100):
        action = rng.random()
        if pending and action < 0.3:
            sched.push(pending.pop(), now)
        elif in_flight and action < 0.6:
            req = in_flight.pop(rng.randrange(len(in_flight)))
            running[req.host] -= 1
            sched.finish(req.host, now)
        elif action < 0.9:
            req = sched.pop(now)
            if req is not None:
                running[req.host] = running.get(req.host, 0) + 1
                assert running[req.host] <= per_host
                if req.host in last_start:
                    assert now - last_start[req.host] >= delay - 1e-9
                last_start[req.host] = now
                in_flight.append(req)
                handed.append(req)
        else:
            wake = sched.next_wakeup()
            now = wake if wake is not None and wake > now else now + rng.random() * 0.2
        if not pending and not in_flight and len(sched) == 0:
            break
    # drain what is left with a fast-forwarding clock
    while pending or in_flight or len(sched):
        while pending:
            sched.push(pending.pop(), now)
        while in_flight:
            req = in_flight.pop()
            running[req.host] -= 1
            sched.finish(req.host, now)
        req = sched.pop(now)
        if req is None:
            wake = sched.next_wakeup()
            assert wake is not None, "requests queued but none can ever start"
            now = max(now, wake)
            continue
        if req.host in last_start:
            assert now - last_start[req.host] >= delay - 1e-9
        last_start[req.host] = now
        running[req.host] = running.get(req.host, 0) + 1
        in_flight.append(req)
        handed.append(req)
    assert sorted(r.n for r in handed) == list(range(n))


def test_push_front_goes_first_and_keeps_the_spacing() -> None:
    sched: HostScheduler[Req] = HostScheduler(per_host=1, delay=1.0)
    sched.push(Req("a", 1), 0.0)
    sched.push(Req("a", 2), 0.0)
    early = sched.pop(0.0)
    assert early == Req("a", 1)
    sched.finish("a", 0.0)
    sched.push_front(early, 0.0)  # e.g. robots.txt was fetched in its slot
    assert sched.pop(0.5) is None
    assert sched.pop(1.0) == Req("a", 1)
