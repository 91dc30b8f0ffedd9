"""Live events for WebSocket clients: a hub that never waits for a client.

The jobs publish three kinds of message, each a JSON object with a ``type``:

``progress``
    once a second per running job: counts, rate, in flight, queued;
``page``
    one per recorded result: url, status, error_kind, elapsed_ms, depth, fetched_at;
``state``
    when a job's state changes.

Publishing only appends to each subscriber's bounded buffer: a crawl never waits for a
client. A subscriber whose page buffer overflows is *lagging*: its buffered pages are
dropped and counted, and until its next send completes it gets only ``state`` and
``progress`` messages, and a ``dropped`` message with the count. A subscriber whose send
stays blocked for ``send_timeout`` seconds, or that overflows ``max_strikes`` times in a
row without once draining its buffer, is closed with a reason (``TooSlow``).

Sending costs the service's own loop, which the crawls share: all clients together are
sent at most ``page_rate`` page messages a second. The hub picks, from the stream of
results, a client's equal share of them (a token bucket holding at most a second's share),
encodes each picked page once and hands the same text to every client. The pages it
skips are only counted: each ``progress`` message says how many of the job's pages were
skipped since the service started (``skipped``), the same text for every client.
Publishing a page nobody is sent costs no encoding and no loop over clients, and a
skipped page costs no frame.

Each message is also framed once (a WebSocket text frame). A client whose connection
offers a :class:`~shoal.service._frames.TransportSink` is written by the hub itself, all
its pending messages in one write at most every :meth:`EventHub.write_interval` seconds,
while its transport takes them; its own task only waits while its transport is full.
Other clients are sent message by message by their task.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shoal.core.model import FetchResult
from shoal.service._frames import TransportSink, text_frame

__all__ = ["EventHub", "Subscriber", "TooSlow", "page_message"]


class TooSlow(Exception):
    """A subscriber stayed behind; ``reason`` is what its close frame says."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def page_message(job: str, result: FetchResult) -> str:
    return _dumps(
        {
            "type": "page",
            "job": job,
            "id": result.request_id,
            "url": result.url,
            "status": result.status,
            "error_kind": result.error_kind,
            "elapsed_ms": result.elapsed_ms,
            "depth": result.depth,
            "fetched_at": result.fetched_at,
            "title": _title(result),
        }
    )


def _title(result: FetchResult) -> str | None:
    """The page's ``title`` field, when the job extracts one (cut to 300 characters)."""
    title = (result.fields or {}).get("title")
    return title[:300] if isinstance(title, str) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class HubLimits:
    """``queue``: page messages buffered per client; ``send_timeout``: seconds sending
    what was taken at once may stay blocked; ``max_strikes``: overflows in a row before
    a client is closed; ``page_rate``: page messages a second sent to all clients
    together (0: no limit); ``flush_interval``: seconds the hub gathers messages before
    writing them to the clients it writes itself (0: at the loop's next turn)."""

    queue: int = 1000
    send_timeout: float = 10.0
    max_strikes: int = 5
    page_rate: float = 1000.0
    flush_interval: float = 0.05


@dataclass(frozen=True, slots=True)
class _Message:
    """A message's JSON text and its WebSocket frame, made once for every client."""

    text: str
    frame: bytes
    kind: str = ""  # "page", "state", or "" for the others

    @classmethod
    def of(cls, text: str, *, kind: str = "") -> _Message:
        return cls(text, text_frame(text), kind)


_MAX_STATES = 256  # state messages kept for a client that does not read


class Subscriber:
    """One client's buffers. ``job`` None: every job's events. With a ``sink``, the hub
    writes the client's messages (``notify``: it has some); without, its pump sends them."""

    def __init__(
        self,
        job: str | None,
        limits: HubLimits,
        sink: TransportSink | None = None,
        notify: Callable[[Subscriber], None] | None = None,
    ) -> None:
        self.job = job
        self.sink = sink
        self._notify = notify if sink is not None else None
        self._limits = limits
        # Pages and states in the order they happened; progress joins it before a state.
        self._queue: deque[_Message] = deque()
        self._pages = 0  # page messages in the queue
        self._states = 0
        self._progress: dict[str, _Message] = {}
        self._wake = asyncio.Event()
        self.lagging = False
        self.dropped = 0  # pages dropped since the last ``dropped`` message was taken
        self.dropped_total = 0
        self._strikes = 0
        self.kicked: str | None = None
        self.pending = False  # in the hub's list of clients to write

    def wants(self, job: str) -> bool:
        return self.job is None or self.job == job

    def _ready(self) -> None:
        if self._notify is None:
            self._wake.set()
        else:
            self._notify(self)

    def offer_state(self, message: str | _Message, job: str | None = None) -> None:
        """Queue a state message after the pages before it, and after ``job``'s latest
        progress: a job's last counts come before its state leaves ``running``."""
        if job is not None and (progress := self._progress.pop(job, None)) is not None:
            self._queue.append(progress)
        if isinstance(message, str):
            message = _Message.of(message, kind="state")
        self._queue.append(message)
        self._states += 1
        if self._states > _MAX_STATES:  # a client that never reads: keep the latest
            oldest = next(m for m in self._queue if m.kind == "state")
            self._keep(lambda m: m is not oldest)
            self._states -= 1
        self._ready()

    def _keep(self, wanted: Callable[[_Message], bool]) -> None:
        self._queue = deque(m for m in self._queue if wanted(m))

    def offer_progress(self, job: str, message: _Message) -> None:
        self._progress[job] = message  # only the latest tick matters
        self._ready()

    def offer_pages(self, messages: Sequence[_Message]) -> None:
        """Buffer ``messages`` (the same list for every client: not changed here)."""
        if self.kicked is not None:
            return
        if self.lagging:
            self._drop(len(messages))
            return
        if self._pages + len(messages) > self._limits.queue:
            self._drop(self._pages + len(messages))
            self._keep(lambda m: m.kind != "page")
            self._pages = 0
            self.lagging = True
            self._strikes += 1
            if self._strikes >= self._limits.max_strikes:
                self.kicked = (
                    f"too slow: fell behind {self._strikes} times in a row, "
                    f"{self.dropped_total} events dropped"
                )
                self._wake.set()  # its pump closes it
                return
        else:
            self._queue.extend(messages)
            self._pages += len(messages)
        self._ready()

    def _drop(self, count: int) -> None:
        self.dropped += count
        self.dropped_total += count

    def _take(self) -> list[_Message]:
        if self._pages:
            self._strikes = 0  # it drained its buffer since it last overflowed
        out = list(self._queue)  # no pages while lagging: they are dropped
        self._queue.clear()
        self._pages = self._states = 0
        out.extend(self._progress.values())
        self._progress.clear()
        if self.dropped:
            out.append(_Message.of(_dumps({"type": "dropped", "count": self.dropped})))
            self.dropped = 0
        self._wake.clear()
        return out

    def take(self) -> list[str]:
        """What to send now, in order: pages (none while lagging) and states as they
        happened, the latest progress, and a ``dropped`` message while lagging."""
        return [message.text for message in self._take()]

    def take_frames(self) -> bytes:
        """What :meth:`take` gives, as WebSocket frames in one piece."""
        return b"".join([message.frame for message in self._take()])

    def caught_up(self) -> None:
        """Everything taken was sent: a lagging client may have pages again."""
        self.lagging = False

    def write(self) -> None:
        """Write what is pending to the sink now, if its transport takes it; else leave
        it to the pump, which waits (at most ``send_timeout``) until it does."""
        sink = self.sink
        assert sink is not None
        if self.kicked is not None:
            return
        if not sink.writable:
            self._wake.set()
            return
        frames = self.take_frames()
        if frames and sink.write(frames):
            self.caught_up()

    async def wait(self) -> None:
        await self._wake.wait()

    async def pump(self, send: Callable[[str], Awaitable[None]]) -> None:
        """Send this subscriber's messages until cancelled (with a sink: only those its
        full transport held back); raises ``TooSlow``."""
        timeout = self._limits.send_timeout
        while True:
            if self.kicked is None:
                await self.wait()
            if self.kicked is not None:
                raise TooSlow(self.kicked)
            try:
                # One deadline for what was taken (a handful of messages), not one each.
                async with asyncio.timeout(timeout):
                    if self.sink is not None:
                        await self.sink.wait_writable()
                        self.write()
                        continue
                    texts = self.take()
                    for text in texts:
                        await send(text)
            except TimeoutError:
                raise TooSlow(f"too slow: a send was blocked for {timeout:g} s") from None
            self.caught_up()


class EventHub:
    """Fans job events out to subscribers; every method returns at once."""

    def __init__(
        self, limits: HubLimits | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or HubLimits()
        self._clock = clock
        self._subscribers: set[Subscriber] = set()
        self._skipped: dict[str, int] = {}  # pages over the rate, by job
        self._tokens = 0.0
        self._refilled = clock()
        self._pending: list[Subscriber] = []  # clients the hub writes, with messages
        self._flush: asyncio.Handle | None = None

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def subscribe(self, job: str | None, sink: TransportSink | None = None) -> Subscriber:
        subscriber = Subscriber(job, self.limits, sink, self._mark)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def _mark(self, subscriber: Subscriber) -> None:
        if subscriber.pending:
            return
        subscriber.pending = True
        self._pending.append(subscriber)
        if self._flush is None:
            loop = asyncio.get_running_loop()
            interval = self.write_interval()
            self._flush = (
                loop.call_later(interval, self._write_pending)
                if interval > 0
                else loop.call_soon(self._write_pending)
            )

    def write_interval(self) -> float:
        """Seconds the hub gathers a client's messages before one write: at least
        ``flush_interval``, and with many clients the time it takes one client's share of
        ``page_rate`` to reach a page (at most a second). Each client is then written at
        most as often as it is given a page, and a second's page and progress go together:
        all the hub's writes together stay near ``page_rate`` a second."""
        interval = self.limits.flush_interval
        rate = self.limits.page_rate
        if rate > 0:
            interval = max(interval, min(1.0, len(self._subscribers) / rate))
        return interval

    def _write_pending(self) -> None:
        self._flush = None
        pending, self._pending = self._pending, []
        for subscriber in pending:
            subscriber.pending = False
            if subscriber in self._subscribers:
                subscriber.write()

    def publish_pages(self, job: str, results: Sequence[FetchResult]) -> None:
        subscribers = self._subscribers
        if not subscribers or not results:
            return
        rate = self.limits.page_rate
        if rate > 0:  # 0: every page to every client
            now, share = self._clock(), rate / len(subscribers)
            # At most a second's share at once: a burst never exceeds the rate for long.
            self._tokens = min(max(share, 1.0), self._tokens + (now - self._refilled) * share)
            self._refilled = now
            allowed = min(len(results), int(self._tokens))
            if allowed < len(results):
                self._skipped[job] = self._skipped.get(job, 0) + len(results) - allowed
                if not allowed:
                    return
                results = results[:allowed]
            self._tokens -= allowed
        messages = [_Message.of(page_message(job, result), kind="page") for result in results]
        for subscriber in subscribers:
            if subscriber.job is None or subscriber.job == job:
                subscriber.offer_pages(messages)

    def publish_progress(self, job: str, progress: dict[str, Any]) -> None:
        if not self._subscribers:
            return
        message = _Message.of(
            _dumps(
                {"type": "progress", "job": job, **progress, "skipped": self._skipped.get(job, 0)}
            )
        )
        for subscriber in self._subscribers:
            if subscriber.wants(job):
                subscriber.offer_progress(job, message)

    def publish_state(self, job: str, state: str, *, error: str | None = None) -> None:
        content: dict[str, Any] = {"type": "state", "job": job, "state": state}
        if error is not None:
            content["error"] = error
        message = _Message.of(_dumps(content), kind="state")
        if state == "deleted":
            self._skipped.pop(job, None)
        for subscriber in self._subscribers:
            if subscriber.wants(job):
                subscriber.offer_state(message, job)
