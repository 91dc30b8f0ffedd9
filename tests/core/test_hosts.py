"""Autothrottle and host-health decisions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.core.errors import ConfigError
from shoal.core.hosts import AutoThrottle, HostHealth, HostVerdict


def test_autothrottle_moves_halfway_towards_latency_over_target() -> None:
    throttle = AutoThrottle(target_concurrency=2.0)
    assert throttle.next_delay(1.0, latency=1.0, status=200, min_delay=0.0) == pytest.approx(0.75)
    assert throttle.next_delay(0.0, latency=0.4, status=200, min_delay=0.0) == pytest.approx(0.1)


def test_autothrottle_backs_off_on_429_and_503_and_never_speeds_up_on_errors() -> None:
    throttle = AutoThrottle(max_delay=10.0)
    assert throttle.next_delay(0.0, latency=0.01, status=429, min_delay=0.0) == 1.0
    assert throttle.next_delay(3.0, latency=0.01, status=503, min_delay=0.0) == 6.0
    assert throttle.next_delay(8.0, latency=0.01, status=503, min_delay=0.0) == 10.0
    assert throttle.next_delay(2.0, latency=0.0, status=500, min_delay=0.0) == 2.0
    assert throttle.next_delay(2.0, latency=None, status=None, min_delay=0.0) == 2.0


@given(
    current=st.floats(0, 100),
    latency=st.one_of(st.none(), st.floats(0, 100)),
    status=st.one_of(st.none(), st.sampled_from([200, 301, 404, 429, 500, 503])),
    floor=st.floats(0, 50),
)
def test_autothrottle_stays_within_bounds(
    current: float, latency: float | None, status: int | None, floor: float
) -> None:
    throttle = AutoThrottle(max_delay=60.0)
    delay = throttle.next_delay(current, latency=latency, status=status, min_delay=floor)
    assert min(floor, 60.0) <= delay <= 60.0 or delay == floor <= 60.0


def test_health_pauses_then_abandons_and_a_response_resets() -> None:
    health = HostHealth(pause_after=2, abandon_after=5)
    assert health.record("h", "connect_error") is HostVerdict.OK
    assert health.failing("h")
    assert health.record("h", None) is HostVerdict.OK  # a response resets the count
    assert not health.failing("h")
    verdicts = [health.record("h", "dns_error") for _ in range(5)]
    assert verdicts == [
        HostVerdict.OK,
        HostVerdict.PAUSE,
        HostVerdict.OK,
        HostVerdict.PAUSE,
        HostVerdict.ABANDON,
    ]
    assert health.abandoned("h") and not health.abandoned("other")


def test_health_ignores_page_level_failures() -> None:
    health = HostHealth(pause_after=1, abandon_after=1)
    for kind in ("read_timeout", "too_large", "protocol_error", "connection_reset"):
        assert health.record("h", kind) is HostVerdict.OK
    assert not health.abandoned("h")
    with pytest.raises(ConfigError):
        HostHealth(pause_after=3, abandon_after=2)


@pytest.mark.parametrize("kind", ["connect_error", "dns_error"])
def test_a_host_that_never_answered_is_dead_after_a_few_failures(kind: str) -> None:
    health = HostHealth(pause_after=5, abandon_after=15, dead_after=3)
    assert [health.record("h", kind, "refused") for _ in range(3)] == [
        HostVerdict.OK,
        HostVerdict.OK,
        HostVerdict.ABANDON,
    ]
    assert health.abandoned_kind("h") == (kind, "refused; the host never answered: gave up on it")


def test_a_host_that_answered_once_keeps_the_patient_path() -> None:
    health = HostHealth(pause_after=5, abandon_after=15, dead_after=3)
    health.reached("h")
    verdicts = [health.record("h", "connect_error") for _ in range(15)]
    assert verdicts.count(HostVerdict.PAUSE) == 2 and verdicts[-1] is HostVerdict.ABANDON
    assert health.abandoned_kind("h")[0] == "host_abandoned"
    # A slow host (timeouts) is not a dead one, answered or not.
    for _ in range(5):
        assert health.record("slow", "connect_timeout") is not HostVerdict.ABANDON
