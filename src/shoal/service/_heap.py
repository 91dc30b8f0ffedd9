"""Long-lived WebSocket clients kept out of the garbage collector's full passes.

Each connected client holds a few hundred objects (its protocol, parser, tasks, buffers)
for as long as it stays. Python's full collection walks every tracked object, so with
many clients each one costs the jobs' shared loop a pause proportional to the clients,
not to the crawl. Once enough clients have joined, :class:`ClientHeap` moves what exists
then to the collector's permanent generation (``gc.freeze``), a burst of joins at a time.

Frozen objects are not collected: a frozen client that leaves frees what reference
counting frees, and its reference cycles wait. When as many clients have left as half
of those frozen, everything is handed back to the collector (``gc.unfreeze``), so what
waits stays bounded by the clients that were connected at once.
"""

from __future__ import annotations

import asyncio
import gc

__all__ = ["ClientHeap"]


class ClientHeap:
    """Counts clients joining and leaving; freezes the heap ``delay`` seconds after
    ``step`` more clients than at the last freeze have joined."""

    def __init__(self, *, step: int = 100, delay: float = 1.0) -> None:
        self._step = step
        self._delay = delay
        self._clients = 0
        self._frozen = 0  # clients connected at the last freeze; 0: nothing frozen
        self._left = 0  # clients that left since the last freeze
        self._pending: asyncio.TimerHandle | None = None

    @property
    def frozen(self) -> int:
        return self._frozen

    def joined(self) -> None:
        self._clients += 1
        self._schedule()

    def left(self) -> None:
        self._clients -= 1
        if not self._frozen:
            return
        self._left += 1
        if self._left * 2 >= self._frozen:
            gc.unfreeze()
            self._frozen = self._left = 0
            self._schedule()

    def _schedule(self) -> None:
        if self._pending is None and self._clients - self._frozen >= self._step:
            self._pending = asyncio.get_running_loop().call_later(self._delay, self._freeze)

    def _freeze(self) -> None:
        self._pending = None
        if self._clients - self._frozen < self._step:
            return
        gc.collect(1)  # the young garbage first: only what lives is frozen
        gc.freeze()
        self._frozen, self._left = self._clients, 0

    def close(self) -> None:
        """Cancel a pending freeze, and hand everything frozen back to the collector."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._frozen:
            gc.unfreeze()
            self._frozen = self._left = 0
