"""TokenBucket and parse_rate, on a time passed in."""

from __future__ import annotations

import pytest

from shoal.core.errors import ConfigError
from shoal.core.ratelimit import TokenBucket, parse_rate


def test_requests_arriving_together_are_spaced_in_order() -> None:
    bucket = TokenBucket(4.0)
    assert [bucket.reserve(10.0) for _ in range(4)] == [0.0, 0.25, 0.5, 0.75]


def test_tokens_come_back_at_the_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(2.0, burst=3)
    assert [bucket.reserve(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve(0.0) == 0.5
    assert bucket.reserve(100.0) == 0.0  # long idle: full again, not more than the burst
    assert [bucket.reserve(100.0) for _ in range(3)] == [0.0, 0.0, 0.5]


def test_over_any_window_starts_never_exceed_rate_times_window_plus_burst() -> None:
    bucket = TokenBucket(10.0)
    starts = []
    now = 0.0
    for _ in range(200):
        now += 0.013  # callers arrive faster than the rate
        starts.append(now + bucket.reserve(now))
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 0.1 - 1e-9


@pytest.mark.parametrize(
    ("text", "rate"),
    [("10", 10.0), ("10/s", 10.0), ("600/m", 10.0), ("0.5/s", 0.5), ("36/h", 0.01)],
)
def test_parse_rate(text: str, rate: float) -> None:
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("text", ["", "0", "-1/s", "ten/s", "5/d", "nan", "inf/s"])
def test_bad_rates(text: str) -> None:
    with pytest.raises(ConfigError, match="rate"):
        parse_rate(text)
