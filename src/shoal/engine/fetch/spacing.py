"""Start spacing per host, kept where requests are sent.

The dispatcher hands requests out no closer than a host's delay, but a request
then travels (to a fetch process, through its event loop, through a connect)
before it is sent, and travels faster some times than others: two requests
handed out one delay apart could reach the server closer together. So the
delay is kept a second time, at the send, by construction:

- ``SendSpacing`` holds a host's line from a request's wait until its bytes are
  written: a request takes its turn (``take_turn``), and the next request to the
  host waits until that one has really gone, then one gap more. An aiohttp
  session made with ``send_trace()`` ends the turn in the request's last await
  before the write (``on_request_headers_sent``), so nothing runs between the
  time taken and the request leaving; another transport ends it just before it
  is called.
- One ``SendSpacing`` sees every request to a host while any is in flight:
  ``HostRoutes`` keeps a host's delayed requests on one sender (a fetch process,
  or the crawl's own), and moves the host to another sender only between
  requests, telling the new one when the last request before may have gone (when
  its answer came back, or when its sender was found gone). ``time.monotonic``
  is the system's monotonic clock, the same in every process of the machine.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import aiohttp

from shoal.engine.clock import REAL_CLOCK, Clock

__all__ = [
    "SENDING",
    "HostRoutes",
    "SendSpacing",
    "SendTurn",
    "marks_sends",
    "send_in_turn",
    "send_trace",
]

_FORGET_AFTER = 4096  # hosts remembered before those whose turn is long past are forgotten
_NEVER = float("-inf")

_S = TypeVar("_S")
_T = TypeVar("_T")


class SendSpacing:
    """When each host's last request went, on ``clock``.

    The clock is read afresh, not the loop's time: uvloop's is the time its current
    turn began, which on a busy loop is milliseconds old, and a timer may wake that
    much early by the real clock."""

    def __init__(self, clock: Clock = REAL_CLOCK) -> None:
        self._clock = clock
        self.clock = clock
        self._hosts: dict[str, _HostLine] = {}

    async def take_turn(self, host: str, gap: float, *, after: float = _NEVER) -> SendTurn | None:
        """Wait until a request to ``host`` may be sent: ``gap`` seconds at least after the
        one before it went (or after ``after``, when the one before went from another
        sender). The turn is held until ``SendTurn.go`` or ``SendTurn.give_up``: requests to
        one host take their turns in the order they ask. None when ``gap`` is 0."""
        if gap <= 0:
            return None
        line = self._hosts.get(host)
        if line is None:
            if len(self._hosts) >= _FORGET_AFTER:
                self._forget()
            line = self._hosts[host] = _HostLine()
        await line.lock.acquire()
        try:
            if after > line.sent:
                line.sent = after
            await _sleep_until(self._clock, line.sent + gap)
        except BaseException:
            line.lock.release()
            raise
        return SendTurn(self._clock, line, gap)

    async def wait_turn(self, host: str, gap: float) -> None:
        """``take_turn``, the request going at once."""
        turn = await self.take_turn(host, gap)
        if turn is not None:
            await turn.go()

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
        idle = [name for name, line in self._hosts.items() if not line.lock.locked()]
        for name in idle:
            del self._hosts[name]


class SendTurn:
    """One request's turn at its host, held until it goes or gives up."""

    __slots__ = ("_clock", "_gap", "_line")

    def __init__(self, clock: Clock, line: _HostLine, gap: float) -> None:
        self._clock = clock
        self._line: _HostLine | None = line
        self._gap = gap

    async def go(self) -> None:
        """The request is sent now: note the time (after a last wait, if the turn came a
        little early) and hand the turn on. Only the first call counts."""
        line = self._line
        if line is None:
            return
        self._line = None
        try:
            await _sleep_until(self._clock, line.sent + self._gap)
            # Counted from when it really goes, so that a late send of this request does
            # not bring the next one closer.
            line.sent = self._clock.monotonic()
        finally:
            line.lock.release()

    def give_up(self) -> None:
        """The request ended without being sent (or its send was already counted)."""
        line = self._line
        if line is not None:
            self._line = None
            line.lock.release()


async def _sleep_until(clock: Clock, when: float) -> None:
    wait = when - clock.monotonic()
    if wait > 0:
        await clock.sleep(wait)
        # A timer of uvloop counts from when its loop's turn began: it may wake a little
        # early by the real clock, never twice.
        early = when - clock.monotonic()
        if early > 0:
            await clock.sleep(early)


class _HostLine:
    __slots__ = ("lock", "sent")

    def __init__(self) -> None:
        self.sent = _NEVER
        self.lock = asyncio.Lock()


#: The turn of the request the current task is about to send: ``send_trace`` ends it.
SENDING: contextvars.ContextVar[SendTurn | None] = contextvars.ContextVar(
    "shoal_sending", default=None
)


async def _headers_going(
    session: aiohttp.ClientSession,
    context: object,
    params: aiohttp.TraceRequestHeadersSentParams,
) -> None:
    turn = SENDING.get()
    if turn is not None:
        await turn.go()


def send_trace() -> aiohttp.TraceConfig:
    """A trace for an aiohttp session that ends the sending task's ``SENDING`` turn in
    the last await before a request's first bytes are written (a body-less request
    is written without another await; a request with a body, in a task of its own)."""
    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(_headers_going)
    return trace


async def send_in_turn(
    turn: SendTurn | None, marks_send: bool, send: Callable[[], Awaitable[_T]]
) -> _T:
    """``send()`` in ``turn``: ended by the transport as the request is written when it
    ``marks_send``, else just before ``send`` is called; given up if it never was."""
    if turn is None:
        return await send()
    if not marks_send:
        await turn.go()
        return await send()
    token = SENDING.set(turn)
    try:
        return await send()
    finally:
        SENDING.reset(token)
        turn.give_up()


def marks_sends(session: aiohttp.ClientSession) -> bool:
    """Whether ``session`` ends ``SENDING`` turns itself (it was made with ``send_trace``)."""
    return any(_headers_going in trace.on_request_headers_sent for trace in session.trace_configs)


class HostRoutes(Generic[_S]):
    """Which sender sends each host's delayed requests.

    A host stays with its sender while any of its requests is in flight there; it
    moves (to the sender ``take`` is offered) only between requests, or when its
    sender is gone. ``take`` then says when the host's previous request may have
    gone at the latest, for the new sender to count the gap from."""

    def __init__(self, clock: Clock = REAL_CLOCK) -> None:
        self._clock = clock
        self._hosts: dict[str, _Route[_S]] = {}

    def take(
        self, host: str, gap: float, offered: _S, alive: Callable[[_S], bool]
    ) -> tuple[_S, float]:
        """The sender for a new request to ``host``, to go ``gap`` seconds after the one
        before, and the time the one before may have gone from another sender at the
        latest (``-inf`` when none did)."""
        route = self._hosts.get(host)
        if route is None:
            if len(self._hosts) >= _FORGET_AFTER:
                self._forget()
            self._hosts[host] = _Route(offered, gap)
            return offered, _NEVER
        route.gap = gap
        sender = route.sender
        if sender is offered or (route.in_flight and alive(sender)):
            route.in_flight += 1
            return sender, _NEVER
        # Every request the old sender had was answered (or it is gone): all went before.
        after = route.done_at if not route.in_flight else self._clock.monotonic()
        route.sender, route.in_flight = offered, 1
        return offered, after

    def done(self, host: str, sender: _S) -> None:
        """A request to ``host`` that ``take`` gave to ``sender`` was answered (or failed)."""
        route = self._hosts.get(host)
        if route is not None and route.sender is sender and route.in_flight:
            route.in_flight -= 1
            route.done_at = self._clock.monotonic()

    def _forget(self) -> None:
        """Forget the hosts whose next request may go at once from any sender."""
        now = self._clock.monotonic()
        idle = [
            name
            for name, route in self._hosts.items()
            if not route.in_flight and route.done_at + route.gap <= now
        ]
        for name in idle:
            del self._hosts[name]


class _Route(Generic[_S]):
    __slots__ = ("done_at", "gap", "in_flight", "sender")

    def __init__(self, sender: _S, gap: float) -> None:
        self.sender = sender
        self.gap = gap
        self.in_flight = 1
        self.done_at = _NEVER
