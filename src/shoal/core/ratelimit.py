"""A token bucket over all hosts: ``--rate N/s``, decided on values, the time passed in.

Each request start takes a token; tokens come back at ``rate`` per second up
to ``burst``. ``reserve(now)`` always grants the request and says how long
it must wait first: when tokens run out the bucket goes into debt, so
callers that arrive together are spaced ``1/rate`` apart in arrival order
rather than retrying for a token.
"""

from __future__ import annotations

import math

from shoal.core.errors import ConfigError

__all__ = ["TokenBucket", "parse_rate"]

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_rate(text: str) -> float:
    """Requests per second from ``"10"``, ``"10/s"``, ``"600/m"`` or ``"0.5/s"``."""
    number, _, unit = text.strip().partition("/")
    seconds = _UNITS.get(unit.strip().lower() or "s")
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if seconds is None or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"a rate is N/s, N/m or N/h with N > 0 (such as 10/s), got {text!r}")
    return value / seconds


class TokenBucket:
    """Request starts at ``rate`` per second on average, at most ``burst`` at once."""

    def __init__(self, rate: float, *, burst: float = 1.0) -> None:
        if not math.isfinite(rate) or rate <= 0:
            raise ConfigError(f"rate must be > 0 requests per second, got {rate!r}")
        if not math.isfinite(burst) or burst < 1:
            raise ConfigError(f"burst must be at least 1, got {burst!r}")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last: float | None = None

    def reserve(self, now: float) -> float:
        """Take a token for a request starting at ``now``; return the seconds it must wait
        before it starts (0: at once)."""
        if self._last is not None and now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        if self._last is None or now > self._last:
            self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
