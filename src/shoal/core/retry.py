"""Whether, and when, a failed attempt is tried again.

A pure decision, as in scrapy's retry middleware but without the middleware:
the engine reports what happened (the status, or the transport ``error_kind``
when no response arrived, and the server's ``Retry-After``) together with the
current time and a seeded ``random.Random``; ``decide_retry`` answers with the
delay before the next attempt, or ``None`` when the outcome is final.

Counting: ``attempts`` is the number of attempts made so far, including the one
that just failed. ``RetryPolicy.retries`` is the number of *re*-tries, so with
``retries=3`` a request is attempted at most 4 times: attempts 1, 2 and 3 may be
followed by another, attempt 4 may not.

Waiting: after failed attempt *n* the wait is uniform in
``[0, min(backoff_cap, backoff_base * 2**(n-1))]`` ("full jitter"), so the first
retry waits at most ``backoff_base``. When the server names a wait with
``Retry-After`` on a retried status (typically 429 or 503), that wait is used
instead, capped at ``retry_after_cap``: a server asking for an hour gets
``retry_after_cap`` seconds, after which the request is tried again.
"""

from __future__ import annotations

import email.utils
import math
from datetime import UTC
from typing import TYPE_CHECKING

from shoal.core.config import RetryPolicy
from shoal.core.kinds import RETRYABLE_KINDS

if TYPE_CHECKING:  # core takes a seeded generator; it never makes its own
    import random

__all__ = ["backoff", "decide_retry", "parse_retry_after"]

# Retry-After values this large (> 31 years) are capped anyway; keep them finite.
_MAX_RETRY_AFTER = 1e9


def backoff(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """The jittered wait after failed ``attempt`` (1-based), in seconds.

    Uniform in ``[0, min(policy.backoff_cap, policy.backoff_base * 2**(attempt-1))]``.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    try:
        growth = math.ldexp(policy.backoff_base, attempt - 1)  # base * 2**(attempt-1)
    except OverflowError:  # past the float range; the cap has long taken over
        growth = math.inf
    return rng.uniform(0.0, min(policy.backoff_cap, growth))


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value.

    ``value`` is delay-seconds (a non-negative integer) or an HTTP-date
    (IMF-fixdate, or the obsolete RFC 850 and asctime forms, read as UTC);
    ``now`` is the current Unix time. A date in the past gives ``0.0``.
    Anything else gives ``None``.
    """
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        digits = text.lstrip("0") or "0"
        # Compare lengths first: float() of a 400-digit number overflows.
        return _MAX_RETRY_AFTER if len(digits) > 10 else min(float(digits), _MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, when.timestamp() - now), _MAX_RETRY_AFTER)


def decide_retry(
    policy: RetryPolicy,
    *,
    attempts: int,
    status: int | None,
    error_kind: str | None,
    retry_after: str | None,
    now: float,
    rng: random.Random,
) -> float | None:
    """The delay in seconds before the next attempt, or ``None`` if the outcome is final.

    Another attempt is made when ``attempts <= policy.retries`` and either the
    response ``status`` is in ``policy.retry_statuses``, or there was no
    response (``status is None``) and ``error_kind`` is a retryable transport
    failure (``RETRYABLE_KINDS``). Policy outcomes (robots, scope, size...)
    are never retried. For a retried status, a parseable ``retry_after``
    header value replaces the jittered backoff, capped at
    ``policy.retry_after_cap``.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    if attempts > policy.retries:
        return None
    if status is not None:
        if status not in policy.retry_statuses:
            return None
        if retry_after is not None:
            wait = parse_retry_after(retry_after, now)
            if wait is not None:
                return min(wait, policy.retry_after_cap)
    elif error_kind is None or error_kind not in RETRYABLE_KINDS:
        return None
    return backoff(policy, attempts, rng)
