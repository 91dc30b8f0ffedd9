"""How long this worker's leases surely hold, as its own clock tells.

A row leased at ``l`` is this worker's until ``l + ttl``; each renew extends every row
the worker still holds to ``renew + ttl``. A renew that comes after a row's lease ran out
(a process frozen or starved, a store away for longer than a lease) does not win the row
back: another worker may have taken it over and fetched it meanwhile. ``LeaseClock``
keeps what the worker knows, so that it sends no request for a row that may no longer be
its own: such a row is given back instead (``JobRun._worker``), and the store ignores
the release of a row that is another worker's now.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

__all__ = ["LeaseClock"]

log = logging.getLogger("shoal.engine.fleet.leases")

MARGIN = 0.1
"""Of a lease: the part at its end in which no request is sent (the send's own time, and
the clocks of the machines of a fleet differing)."""


@dataclass(slots=True)
class LeaseClock:
    """``renewed_at``: the time the last renew was computed at (wall clock, as the store's
    lease times); ``lost_before``: rows leased before then may be another worker's."""

    ttl: float
    renewed_at: float = float("-inf")
    lost_before: float = float("-inf")

    def renewed(self, at: float) -> None:
        """A renew computed at ``at`` was written to the store."""
        if at > self.renewed_at + self.ttl * (1 - MARGIN):
            # Rows this renew found run out, it did not win back.
            if self.renewed_at > float("-inf"):
                log.warning(
                    "this worker's leases ran out (no renew for %.0f s, a lease is %g s): "
                    "the rows it held go back to the job",
                    at - self.renewed_at,
                    self.ttl,
                )
            self.lost_before = max(self.lost_before, at - self.ttl * (1 - MARGIN))
        self.renewed_at = at

    def holds(self, leased_at: float, now: float) -> bool:
        """Whether a row leased at ``leased_at`` is surely still this worker's at ``now``."""
        if leased_at < self.lost_before:
            return False
        start = leased_at if leased_at > self.renewed_at else self.renewed_at
        return now < start + self.ttl * (1 - MARGIN)
