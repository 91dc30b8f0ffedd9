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
    together (0: no limit)."""

    queue: int = 1000
    send_timeout: float = 10.0
    max_strikes: int = 5
    page_rate: float = 1000.0


class Subscriber:
    """One client's buffers. ``job`` None: every job's events."""

    def __init__(self, job: str | None, limits: HubLimits) -> None:
        self.job = job
        self._limits = limits
        self._pages: deque[str] = deque()
        self._states: deque[str] = deque(maxlen=256)
        self._progress: dict[str, str] = {}
        self._wake = asyncio.Event()
        self.lagging = False
        self.dropped = 0  # pages dropped since the last ``dropped`` message was taken
        self.dropped_total = 0
        self._strikes = 0
        self.kicked: str | None = None

    def wants(self, job: str) -> bool:
        return self.job is None or self.job == job

    def offer_state(self, text: str) -> None:
        self._states.append(text)
        self._wake.set()

    def offer_progress(self, job: str, text: str) -> None:
        self._progress[job] = text  # only the latest tick matters
        self._wake.set()

    def offer_pages(self, texts: Sequence[str]) -> None:
        """Buffer ``texts`` (the same list for every client: not changed here)."""
        if self.kicked is not None:
            return
        if self.lagging:
            self._drop(len(texts))
            return
        if len(self._pages) + len(texts) > self._limits.queue:
            self._drop(len(self._pages) + len(texts))
            self._pages.clear()
            self.lagging = True
            self._strikes += 1
            if self._strikes >= self._limits.max_strikes:
                self.kicked = (
                    f"too slow: fell behind {self._strikes} times in a row, "
                    f"{self.dropped_total} events dropped"
                )
        else:
            self._pages.extend(texts)
        self._wake.set()

    def _drop(self, count: int) -> None:
        self.dropped += count
        self.dropped_total += count

    def take(self) -> list[str]:
        """What to send now, in order: states, pages (unless lagging), progress, and a
        ``dropped`` message while lagging."""
        out = list(self._states)
        self._states.clear()
        if not self.lagging:
            if self._pages:
                self._strikes = 0  # it drained its buffer since it last overflowed
            out.extend(self._pages)
            self._pages.clear()
        out.extend(self._progress.values())
        self._progress.clear()
        if self.dropped:
            out.append(_dumps({"type": "dropped", "count": self.dropped}))
            self.dropped = 0
        self._wake.clear()
        return out

    def caught_up(self) -> None:
        """Everything taken was sent: a lagging client may have pages again."""
        self.lagging = False

    async def wait(self) -> None:
        await self._wake.wait()

    async def pump(self, send: Callable[[str], Awaitable[None]]) -> None:
        """Send this subscriber's messages until cancelled; raises ``TooSlow``."""
        timeout = self._limits.send_timeout
        while True:
            if self.kicked is None:
                await self.wait()
            if self.kicked is not None:
                raise TooSlow(self.kicked)
            texts = self.take()
            try:
                # One deadline for what was taken (a handful of messages), not one each.
                async with asyncio.timeout(timeout):
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

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def subscribe(self, job: str | None) -> Subscriber:
        subscriber = Subscriber(job, self.limits)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

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
        texts = [page_message(job, result) for result in results]
        for subscriber in subscribers:
            if subscriber.job is None or subscriber.job == job:
                subscriber.offer_pages(texts)

    def publish_progress(self, job: str, progress: dict[str, Any]) -> None:
        if not self._subscribers:
            return
        text = _dumps(
            {"type": "progress", "job": job, **progress, "skipped": self._skipped.get(job, 0)}
        )
        for subscriber in self._subscribers:
            if subscriber.wants(job):
                subscriber.offer_progress(job, text)

    def publish_state(self, job: str, state: str, *, error: str | None = None) -> None:
        message: dict[str, Any] = {"type": "state", "job": job, "state": state}
        if error is not None:
            message["error"] = error
        text = _dumps(message)
        if state == "deleted":
            self._skipped.pop(job, None)
        for subscriber in self._subscribers:
            if subscriber.wants(job):
                subscriber.offer_state(text)
