"""Start spacing per host, kept where requests are sent.

The dispatcher hands requests out no closer than a host's delay, but a request
then travels (to a fetch process, through its event loop) before it is sent,
and travels faster some times than others: two requests handed out one delay
apart could reach the server closer together. ``SendSpacing`` holds each
request until its host's turn just before it is sent. Each request reserves
its place in line as it asks, so requests to one host in flight side by side
(``per_host`` > 1) take turns too, each counted from when the one before
really went. One ``SendSpacing`` must see every request
to a host: a fetch pool sends all of a host's delayed requests through one
process.
"""

from __future__ import annotations

import asyncio

from shoal.engine.clock import REAL_CLOCK, Clock

__all__ = ["SendSpacing"]

_FORGET_AFTER = 4096  # hosts remembered before those whose turn is long past are forgotten


class SendSpacing:
    """When each host's last request went, on ``clock``.

    The clock is read afresh, not the loop's time: uvloop's is the time its current
    turn began, which on a busy loop is milliseconds old, and a timer may wake that
    much early by the real clock."""

    def __init__(self, clock: Clock = REAL_CLOCK) -> None:
        self._clock = clock
        self.clock = clock
        self._hosts: dict[str, _HostTurn] = {}

    async def wait_turn(self, host: str, gap: float) -> None:
        """Return when a request to ``host`` may be sent: ``gap`` seconds at least after the
        one before it went. Requests to one host take their turns in the order they ask."""
        if gap <= 0:
            return
        state = self._hosts.get(host)
        if state is None:
            if len(self._hosts) >= _FORGET_AFTER:
                self._forget()
            state = self._hosts[host] = _HostTurn()
        async with state.turn:
            wait = state.sent + gap - self._clock.monotonic()
            if wait > 0:
                await self._clock.sleep(wait)
                # A timer of uvloop counts from when its loop's turn began: it may wake a
                # little early by the real clock, never twice.
                early = state.sent + gap - self._clock.monotonic()
                if early > 0:
                    await self._clock.sleep(early)
            # Counted from when it really goes, so that a late wake-up of this request
            # does not bring the next one closer.
            state.sent = self._clock.monotonic()

    def sent_by(self, host: str, when: float) -> None:
        """The request to ``host`` that had its turn last went no later than ``when`` (on
        this spacing's clock): the next turn counts from then if that is later. For a
        client that sends on a thread of its own, after its turn, at a time not seen
        here: the response's first byte bounds it."""
        state = self._hosts.get(host)
        if state is not None and when > state.sent:
            state.sent = when

    def _forget(self) -> None:
        """Forget the hosts nobody waits on: what a host's next request waits for is in
        the past by the time so many others have come."""
        idle = [name for name, state in self._hosts.items() if not state.turn.locked()]
        for name in idle:
            del self._hosts[name]


class _HostTurn:
    __slots__ = ("sent", "turn")

    def __init__(self) -> None:
        self.sent = float("-inf")
        self.turn = asyncio.Lock()
