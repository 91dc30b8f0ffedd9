"""Fetching in child processes, so that one crawl uses more than one core.

The crawler process keeps everything that decides and records: the store, the
frontier, per-host politeness, retries, robots.txt. A child process
(``python -m shoal.engine._fetch_child``) only runs ``Fetcher.fetch``: it
receives requests, does the HTTP, and sends each ``Attempt`` back. HTTP is
most of the CPU a page costs, and the GIL keeps it on one core otherwise.

Messages are pickled lists, each framed by a 4-byte length, on the child's
stdin and stdout; everything queued in one turn of the event loop travels in
one frame. Until a child has started (about a quarter second), and after the
last one is gone, requests are fetched in this process: ``FetchPool.fetch``
always returns an attempt. A child that dies takes nothing with it: its
requests are fetched again here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pickle
import struct
import sys
from typing import Any, cast

from shoal.core.config import CrawlConfig
from shoal.core.model import Request
from shoal.engine.fetcher import Attempt, Fetcher, wants_body

__all__ = ["AUTO_START_ROWS", "FetchPool", "FrameReader", "auto_processes", "frame"]

log = logging.getLogger("shoal.engine.fetchpool")

# With processes left to auto, children start once a run has leased this many rows:
# a short job is over before a child would have finished importing.
AUTO_START_ROWS = 2_000
_MAX_AUTO = 4  # children, at most, when left to auto
_LENGTH = struct.Struct("!I")
_CLOSE_GRACE = 5.0  # seconds a child gets to exit after its stdin closes
_START_TIMEOUT = 30.0  # seconds ``start`` waits for the children to be ready


def auto_processes() -> int:
    """Children to start when not told: one per core beyond the first, at most four."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(_MAX_AUTO, (cores or 1) - 1))


def frame(message: Any) -> bytes:
    """One message as it travels on the pipe: length, then pickle."""
    data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


class FrameReader:
    """Splits a byte stream back into the messages ``frame`` wrote."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        buffer = self._buffer
        buffer += data
        messages = []
        start, end = 0, len(buffer)
        while end - start >= 4:
            (size,) = _LENGTH.unpack_from(buffer, start)
            if end - start - 4 < size:
                break
            messages.append(pickle.loads(memoryview(buffer)[start + 4 : start + 4 + size]))
            start += 4 + size
        if start:
            del buffer[:start]
        return messages


class ChildGone(Exception):
    """The child process fetching a request exited before answering."""


class _Child(asyncio.SubprocessProtocol):
    """One fetch process: sends it requests, resolves their futures from its answers."""

    def __init__(self, pool: FetchPool) -> None:
        self._pool = pool
        self._reader = FrameReader()
        self._outbox: list[tuple[Any, ...]] = []
        self._sending = False
        self.transport: asyncio.SubprocessTransport | None = None
        self._stdin: asyncio.WriteTransport | None = None
        self.pending: dict[int, asyncio.Future[Attempt]] = {}
        self.ready = False
        self.ready_event = asyncio.Event()
        self.exited = asyncio.get_running_loop().create_future()

    # -- protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio's classes; they do have the methods.
        self.transport = cast(asyncio.SubprocessTransport, transport)
        self._stdin = cast(asyncio.WriteTransport, self.transport.get_pipe_transport(0))

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        pending = self.pending
        for message in self._reader.feed(data):
            if message == "ready":
                self.ready = True
                self.ready_event.set()
                self._pool._child_ready(self)
                continue
            for seq, attempt in message:
                future = pending.pop(seq, None)
                if future is not None and not future.done():
                    future.set_result(attempt)

    def process_exited(self) -> None:
        self.ready = False
        self.ready_event.set()  # nobody waits for a child that is gone
        self._pool._child_gone(self)
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ChildGone())
        if not self.exited.done():
            self.exited.set_result(None)

    # -- sending ---------------------------------------------------------------

    def send(self, message: Any) -> None:
        if self._stdin is not None and not self._stdin.is_closing():
            self._stdin.write(frame(message))

    def submit(self, seq: int, request: Request) -> asyncio.Future[Attempt]:
        future: asyncio.Future[Attempt] = asyncio.get_running_loop().create_future()
        self.pending[seq] = future
        self._outbox.append(
            (
                seq,
                request.id,
                request.url,
                request.host,
                request.method,
                request.headers,
                request.body,
                request.depth,
                request.parent_url,
                request.attempts,
            )
        )
        if not self._sending:
            self._sending = True
            asyncio.get_running_loop().call_soon(self._send_outbox)
        return future

    def _send_outbox(self) -> None:
        self._sending = False
        outbox, self._outbox = self._outbox, []
        if outbox:
            self.send(outbox)

    def close_input(self) -> None:
        if self._stdin is not None:
            self._stdin.close()


class FetchPool:
    """``fetch`` like a ``Fetcher``, spread over child processes once they run.

    ``local`` fetches in this process until a child is ready, and whenever none
    is. ``processes`` is how many children ``start`` launches.
    """

    def __init__(self, local: Fetcher, config: CrawlConfig, processes: int) -> None:
        self._local = local
        # The child needs the fetch settings only (extraction rules stay here, and may not
        # pickle): whether bodies travel back is decided now.
        self._child_config = (dataclasses.replace(config, extract=None), wants_body(config))
        self._processes = processes
        self._ready: list[_Child] = []
        self._children: list[_Child] = []
        self._seq = 0
        self.offloaded = 0  # attempts a child process made
        self.kept = 0  # attempts made in this process
        self._started = False
        self._start_task: asyncio.Task[None] | None = None

    @property
    def running(self) -> int:
        """Children ready to fetch now."""
        return len(self._ready)

    @property
    def pids(self) -> list[int]:
        """Process ids of the children ready now."""
        return [pid for c in self._ready if c.transport and (pid := c.transport.get_pid())]

    def start_soon(self) -> None:
        """Launch the children in the background (once); fetching goes on meanwhile."""
        if self._started or self._processes <= 0:
            return
        self._started = True
        self._start_task = asyncio.get_running_loop().create_task(
            self._start(), name="shoal-fetch-pool"
        )

    async def start(self) -> None:
        """Launch the children and wait until they are ready (for 30 s at most: then the
        late ones join when ready, and this process fetches meanwhile)."""
        self.start_soon()
        if self._start_task is None:
            return
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                await asyncio.shield(self._start_task)
                waiting = [c.ready_event.wait() for c in self._children if not c.ready]
                if waiting:
                    await asyncio.gather(*waiting)
        except TimeoutError:
            log.warning("fetch processes slow to start; fetching in this one meanwhile")

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        command = [sys.executable, "-m", "shoal.engine._fetch_child"]
        for _ in range(self._processes):
            try:
                _, child = await loop.subprocess_exec(
                    lambda: _Child(self),
                    *command,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=None,
                )
            except OSError as exc:
                log.warning("could not start a fetch process (%s); fetching in this one", exc)
                return
            self._children.append(child)
            child.send(self._child_config)

    def _child_ready(self, child: _Child) -> None:
        self._ready.append(child)

    def _child_gone(self, child: _Child) -> None:
        if child in self._ready:
            self._ready.remove(child)
            if not self._closing:
                log.warning("a fetch process exited; its requests are fetched again")

    _closing = False

    async def fetch(self, request: Request) -> Attempt:
        ready = self._ready
        if not ready:
            self.kept += 1
            return await self._local.fetch(request)
        child = ready[0]
        if len(ready) > 1:
            fewest = len(child.pending)
            for other in ready:
                if len(other.pending) < fewest:
                    child, fewest = other, len(other.pending)
        self._seq += 1
        seq = self._seq
        future = child.submit(seq, request)
        try:
            attempt = await future
        except ChildGone:
            return await self.fetch(request)
        except asyncio.CancelledError:
            child.pending.pop(seq, None)
            raise
        self.offloaded += 1
        return attempt

    async def close(self) -> None:
        """Stop the children: each finishes with EOF on its input, or is killed."""
        self._closing = True
        if self._start_task is not None:
            self._start_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._start_task
        for child in self._children:
            child.close_input()
        for child in self._children:
            try:
                async with asyncio.timeout(_CLOSE_GRACE):
                    await asyncio.shield(child.exited)
            except TimeoutError:
                if child.transport is not None:
                    with contextlib.suppress(ProcessLookupError):
                        child.transport.kill()
                    await child.exited
            finally:
                if child.transport is not None:
                    child.transport.close()
        self._children.clear()
        self._ready.clear()
