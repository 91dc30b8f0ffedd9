"""Tests for shoal.core.retry: backoff, Retry-After, and the retry decision."""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.core.config import RetryPolicy
from shoal.core.kinds import RETRYABLE_KINDS, ErrorKind
from shoal.core.retry import backoff, decide_retry, parse_retry_after

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
POLICY = RetryPolicy(retries=3, backoff_base=0.5, backoff_cap=30.0, retry_after_cap=120.0)


class _Top(random.Random):
    """A generator whose uniform() returns the top of the range."""

    def random(self) -> float:
        return 1.0


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (100, 30.0), (10**6, 30.0)],
)
def test_backoff_ceiling(attempt: int, ceiling: float) -> None:
    assert backoff(POLICY, attempt, _Top()) == ceiling


def test_backoff_huge_attempt_does_not_overflow() -> None:
    policy = RetryPolicy(backoff_base=1e300, backoff_cap=1e308)
    assert backoff(policy, 10**9, _Top()) == 1e308
    assert 0.0 <= backoff(POLICY, 2**64, random.Random(1)) <= 30.0


def test_backoff_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1"):
        backoff(POLICY, 0, random.Random(1))


RETRY_AFTER = [
    ("120", 120.0),
    ("  7 ", 7.0),
    ("0", 0.0),
    ("007", 7.0),
    ("9" * 400, 1e9),
    ("Tue, 14 Nov 2023 22:13:50 GMT", 30.0),  # IMF-fixdate
    ("Tuesday, 14-Nov-23 22:13:50 GMT", 30.0),  # RFC 850
    ("Tue Nov 14 22:13:50 2023", 30.0),  # asctime
    ("Tue, 14 Nov 2023 23:13:20 +0100", 0.0),  # a zone other than GMT, same instant
    ("Tue, 14 Nov 2023 22:00:00 GMT", 0.0),  # in the past
    ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),
    ("", None),
    ("   ", None),
    ("-5", None),
    ("1.5", None),
    ("soon", None),
    ("Tue, 14 Nov 2023 25:13:50 GMT", None),
    ("١٢", None),  # non-ASCII digits
]


@pytest.mark.parametrize(("value", "expected"), RETRY_AFTER)
def test_parse_retry_after(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def _decide(**overrides: Any) -> float | None:
    arguments: dict[str, Any] = {
        "attempts": 1,
        "status": None,
        "error_kind": None,
        "retry_after": None,
        "now": NOW,
        "rng": _Top(),
    }
    arguments.update(overrides)
    policy = arguments.pop("policy", POLICY)
    return decide_retry(policy, **arguments)


DECISIONS: list[tuple[dict[str, Any], float | None]] = [
    # retryable statuses, jittered backoff growing with the attempt
    ({"status": 503}, 0.5),
    ({"status": 500, "attempts": 2}, 1.0),
    ({"status": 429, "attempts": 3}, 2.0),
    # retries=3 allows 4 attempts: the 4th failure is final
    ({"status": 503, "attempts": 4}, None),
    ({"status": 503, "attempts": 99}, None),
    # statuses not in the policy are final, whatever the error kind says
    ({"status": 200}, None),
    ({"status": 404}, None),
    ({"status": 501}, None),
    ({"status": 404, "error_kind": "timeout"}, None),
    ({"status": 418, "policy": RetryPolicy(retry_statuses=frozenset({418}))}, 0.5),
    # transport failures: retryable kinds only
    ({"error_kind": "timeout"}, 0.5),
    ({"error_kind": ErrorKind.CONNECTION_RESET, "attempts": 2}, 1.0),
    ({"error_kind": "dns_error", "attempts": 3}, 2.0),
    ({"error_kind": "timeout", "attempts": 4}, None),
    ({"error_kind": "tls_error"}, None),
    ({"error_kind": "robots_disallowed"}, None),
    ({"error_kind": "too_large"}, None),
    ({"error_kind": "no_such_kind"}, None),
    ({"error_kind": None}, None),
    # Retry-After replaces the jitter, capped; garbage falls back to backoff
    ({"status": 429, "retry_after": "10"}, 10.0),
    ({"status": 503, "retry_after": "Tue, 14 Nov 2023 22:14:20 GMT"}, 60.0),
    ({"status": 503, "retry_after": "3600"}, 120.0),
    ({"status": 503, "retry_after": "0"}, 0.0),
    ({"status": 503, "retry_after": "later", "attempts": 2}, 1.0),
    ({"status": 500, "retry_after": "5"}, 5.0),
    ({"status": 404, "retry_after": "5"}, None),
    ({"status": 503, "retry_after": "5", "attempts": 4}, None),
    ({"error_kind": "timeout", "retry_after": "5"}, 0.5),
    # no retries at all
    ({"status": 503, "policy": RetryPolicy(retries=0)}, None),
]


@pytest.mark.parametrize(("case", "expected"), DECISIONS)
def test_decide_retry(case: dict[str, Any], expected: float | None) -> None:
    assert _decide(**case) == expected


def test_decide_retry_rejects_zero_attempts() -> None:
    with pytest.raises(ValueError, match="attempts must be >= 1"):
        _decide(status=503, attempts=0)


# --- properties -----------------------------------------------------------

_POLICIES = st.builds(
    RetryPolicy,
    retries=st.integers(0, 10),
    backoff_base=st.floats(0, 1e6, allow_nan=False),
    backoff_cap=st.floats(0, 1e6, allow_nan=False),
    retry_after_cap=st.floats(0, 1e6, allow_nan=False),
)
_STATUSES = st.one_of(st.none(), st.integers(100, 599), st.sampled_from([429, 500, 503]))
_KINDS = st.one_of(st.none(), st.sampled_from([kind.value for kind in ErrorKind]))
_RETRY_AFTERS = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.integers(0, 10**12).map(str),
    st.sampled_from(["Tue, 14 Nov 2023 22:15:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT"]),
)


@given(_POLICIES, st.integers(1, 10**6), st.integers(0, 2**32))
def test_backoff_is_within_bounds(policy: RetryPolicy, attempt: int, seed: int) -> None:
    delay = backoff(policy, attempt, random.Random(seed))
    # Exact arithmetic; past 2**2000 any positive base exceeds any float cap.
    growth = Fraction(policy.backoff_base) * 2 ** min(attempt - 1, 2000)
    assert 0.0 <= delay <= min(Fraction(policy.backoff_cap), growth)


@given(_POLICIES, st.integers(1, 20), _STATUSES, _KINDS, _RETRY_AFTERS, st.integers(0, 2**32))
def test_decision_properties(
    policy: RetryPolicy,
    attempts: int,
    status: int | None,
    error_kind: str | None,
    retry_after: str | None,
    seed: int,
) -> None:
    def decide() -> float | None:
        return decide_retry(
            policy,
            attempts=attempts,
            status=status,
            error_kind=error_kind,
            retry_after=retry_after,
            now=NOW,
            rng=random.Random(seed),
        )

    delay = decide()
    assert delay == decide()  # same seed, same delay
    if delay is None:
        return
    assert 0.0 <= delay <= max(policy.backoff_cap, policy.retry_after_cap)
    assert attempts <= policy.retries
    if status is None:
        assert error_kind in RETRYABLE_KINDS
    else:
        assert status in policy.retry_statuses


@given(st.integers(1, 20), st.integers(0, 2**32))
def test_same_seed_same_delays(attempts: int, seed: int) -> None:
    first = [backoff(POLICY, n, random.Random(seed)) for n in range(1, attempts + 1)]
    second = [backoff(POLICY, n, random.Random(seed)) for n in range(1, attempts + 1)]
    assert first == second


@given(st.text(max_size=40), st.floats(0, 4e9, allow_nan=False))
def test_parse_retry_after_never_raises(value: str, now: float) -> None:
    seconds = parse_retry_after(value, now)
    assert seconds is None or 0.0 <= seconds <= 1e9
