"""Fetching in child processes, so that one crawl uses more than one core.

The crawler process keeps everything that decides and records: the store, the
frontier, per-host politeness, retries, robots.txt. A child process only runs
``Fetcher.fetch``: it receives requests, does the HTTP, and sends each
``Attempt`` back. HTTP is most of the CPU a page costs, and the GIL keeps it
on one core otherwise.

Children come from one of two places. The command line forks them at start
(``prefork``), before any thread or event loop exists: a fork has every module
loaded already, so it is ready in milliseconds, and it waits, costing nothing,
until the run knows whether the job is big enough to use it. Otherwise (the
Python API, or more than were forked) a child is started as
``python -m shoal.engine.fetch.child`` and is ready after its imports, about a
quarter second.

The messages, on two pipes per child, are those of ``engine.fetch.wire``. Until a
child is ready, and after the last one is gone, requests are fetched in
this process: ``FetchPool.fetch`` always returns an attempt. A child that dies
takes nothing with it: its requests are fetched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import pickle
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from shoal.core.config import CrawlConfig
from shoal.core.model import Request
from shoal.engine.fetch.fetcher import Attempt, wants_body
from shoal.engine.fetch.processes import ChildProcess, fork_children, spawn, take_preforked
from shoal.engine.fetch.spacing import HostRoutes, SendSpacing, send_in_turn
from shoal.engine.fetch.transport import Transport, fetch_in_turn
from shoal.engine.fetch.wire import (
    WIRE_VERSION,
    Answer,
    ChildSettings,
    FetchOrder,
    FrameReader,
    Ready,
    frame,
)
from shoal.engine.pages.links import LinkSettings

__all__ = [
    "AUTO_START_ROWS",
    "FetchPool",
    "auto_processes",
    "prefork",
]

log = logging.getLogger("shoal.engine.fetch.pool")

# With processes left to auto, children start once a run has this many rows to do: a
# shorter job is over about when a child would have finished starting.
AUTO_START_ROWS = 1_000
_MAX_AUTO = 4  # children, at most, when left to auto
_CLOSE_GRACE = 5.0  # seconds a child gets to exit after its input closes
_START_TIMEOUT = 30.0  # seconds ``start`` waits for the children to be ready
_NEVER = float("-inf")
_T = TypeVar("_T")


def _alive(sender: _Child | None) -> bool:
    return sender is None or sender.ready


def auto_processes() -> int:
    """Children to start when not told: one per core (at most four), none on one core.

    Not one fewer than the cores: this process needs only part of one (measured in
    docs/benchmarks.md).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 0 if (cores or 1) < 2 else min(_MAX_AUTO, cores or 1)


def prefork(processes: int | None, *, http: str | None = None) -> None:
    """Fork the fetch processes a run may use (``processes``, or ``auto_processes()``
    when None), now: call it before any thread or event loop exists. The next run's
    ``FetchPool`` takes them; if the job stays small they are never sent work and
    exit when the run closes their input.

    ``http`` names the HTTP client the run uses (``engine.transport.client_for``), when
    known: its module is imported here too, so that the children share it with this
    process instead of each importing a copy of its own.
    """
    count = auto_processes() if processes is None else processes
    if count:
        _share_before_fork(http)
    fork_children(count)


def _share_before_fork(http: str | None) -> None:
    """Make what every fetch process needs shared memory rather than a copy per child.

    The modules a child runs are imported now (a page written after the fork is copied
    into the process that writes it). Then every object alive is moved out of the
    garbage collector's reach (``gc.freeze``): these are modules, classes and functions
    that live as long as the process, and a collection in a child would otherwise
    write to each one's header and so copy every page that holds one.
    """
    import shoal.engine.fetch.child  # noqa: F401

    if http == "pyreqwest":
        import shoal.engine.fetch.reqwest  # noqa: F401
    gc.collect()
    gc.freeze()


def _picklable(value: object) -> bool:
    try:
        pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return False
    return True


class _ChildOutput(asyncio.Protocol):
    """What a child writes back, handed to its ``_Child``."""

    def __init__(self, child: _Child) -> None:
        self._child = child
        self._reader = FrameReader()

    def data_received(self, data: bytes) -> None:
        self._child.received(self._reader.feed(data))

    def connection_lost(self, exc: Exception | None) -> None:
        self._child.gone()


class ChildGone(Exception):
    """The child process fetching a request exited before answering."""


class _Child:
    """One fetch process: sends it requests, resolves their futures from its answers."""

    def __init__(self, pool: FetchPool, process: ChildProcess) -> None:
        self._pool = pool
        self.process = process
        self._outbox: list[FetchOrder] = []
        self._sending = False
        self._input: asyncio.WriteTransport | None = None
        self._output: asyncio.ReadTransport | None = None
        self.pending: dict[int, asyncio.Future[Attempt]] = {}
        self.ready = False
        self.ready_event = asyncio.Event()
        self.exited = asyncio.get_running_loop().create_future()

    async def connect(self, first: ChildSettings) -> None:
        """Attach the pipes to the loop and send the child its settings."""
        loop = asyncio.get_running_loop()
        process = self.process
        self._input, _ = await loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(process.to_child, "wb", buffering=0)
        )
        self._output, _ = await loop.connect_read_pipe(
            lambda: _ChildOutput(self), os.fdopen(process.from_child, "rb", buffering=0)
        )
        self.send(first)

    def received(self, messages: list[Ready | list[Answer]]) -> None:
        pending = self.pending
        for message in messages:
            if isinstance(message, Ready):
                if message.version != WIRE_VERSION:
                    log.warning(
                        "a fetch process speaks wire version %d, not %d; not using it",
                        message.version,
                        WIRE_VERSION,
                    )
                    self.ready_event.set()
                    self.process.kill()
                    continue
                self.ready = True
                self.ready_event.set()
                self._pool._child_ready(self)
                continue
            for answer in message:
                future = pending.pop(answer.seq, None)
                if future is not None and not future.done():
                    future.set_result(answer.attempt)

    def gone(self) -> None:
        """Its output ended: the child exited (or will, having closed it)."""
        self.ready = False
        self.ready_event.set()  # nobody waits for a child that is gone
        self._pool._child_gone(self)
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ChildGone())
        if not self.exited.done():
            self.exited.set_result(None)

    def send(self, message: ChildSettings | list[FetchOrder]) -> None:
        if self._input is not None and not self._input.is_closing():
            self._input.write(frame(message))

    def submit(
        self, seq: int, request: Request, gap: float, after: float
    ) -> asyncio.Future[Attempt]:
        future: asyncio.Future[Attempt] = asyncio.get_running_loop().create_future()
        self.pending[seq] = future
        self._outbox.append(FetchOrder(seq, request, gap, after))
        if not self._sending:
            self._sending = True
            asyncio.get_running_loop().call_soon(self._send_outbox)
        return future

    def _send_outbox(self) -> None:
        self._sending = False
        outbox, self._outbox = self._outbox, []
        if outbox:
            self.send(outbox)

    async def close(self) -> None:
        """Close its input (it exits on EOF); kill it if it does not within the grace."""
        if self._input is not None:
            self._input.close()
        else:
            os.close(self.process.to_child)
        if self._output is None:
            os.close(self.process.from_child)
        else:
            try:
                async with asyncio.timeout(_CLOSE_GRACE):
                    await asyncio.shield(self.exited)
            except TimeoutError:
                self.process.kill()
            self._output.close()
        try:
            async with asyncio.timeout(_CLOSE_GRACE):
                await self.process.wait_reaped()
        except TimeoutError:
            self.process.kill()


class FetchPool:
    """``fetch`` like a ``Fetcher``, spread over child processes once they run.

    ``local`` fetches in this process until a child is ready, and whenever none
    is. ``processes`` is how many children ``start`` brings up: forked ones from
    ``prefork`` first, then started by exec.
    """

    def __init__(
        self,
        local: Transport,
        config: CrawlConfig,
        processes: int,
        *,
        links: LinkSettings | None = None,
    ) -> None:
        self._local = local
        # The child needs the fetch settings only (extraction rules stay here, and may not
        # pickle): whether bodies travel back is decided now. With ``links`` it also reads
        # each page's links, the heaviest part of a crawl after HTTP, and sends them
        # instead of the body when nothing else here needs it.
        if links is not None and not _picklable(links):
            links = None  # a predicate for strip_params: links are read here, then
        # Extraction rules travel as their text and are compiled again there: a page's
        # fields are extracted where it was fetched, before its links are read (extraction
        # settles the page's encoding, with detection, which link reading then uses).
        rules = config.extract.as_record() if config.extract is not None else None
        self._child_settings = ChildSettings(
            config=dataclasses.replace(config, extract=None),
            keep_body=wants_body(config),
            links=links,
            extract_rules=rules,
            save_bodies=config.save_bodies,
        )
        self._processes = processes
        self._forked = take_preforked(processes)
        self._ready: list[_Child] = []
        self._children: list[_Child] = []
        self._seq = 0
        self.offloaded = 0  # attempts a child process made
        self.kept = 0  # attempts made in this process
        self.peak = 0  # the most children ready at once
        self.pages_read = 0  # attempts whose page a child read (links, fields)
        self._closing = False
        self._tasks: asyncio.TaskGroup | None = None
        self._spacing = SendSpacing()  # for the requests fetched in this process
        self._routes: HostRoutes[_Child | None] = HostRoutes()  # None: this process
        self._start_task: asyncio.Task[None] | None = None

    @property
    def running(self) -> int:
        """Children ready to fetch now."""
        return len(self._ready)

    @property
    def pids(self) -> list[int]:
        """Process ids of the children ready now."""
        return [child.process.pid for child in self._ready]

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[FetchPool]:
        """The pool, open for fetching; its background start runs in this block's task
        group, and its children are stopped when the block ends."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            try:
                yield self
            finally:
                await self.close()
                self._tasks = None

    def start_soon(self) -> None:
        """Bring the children up in the background (once); fetching goes on meanwhile."""
        if self._start_task is not None or self._processes <= 0:
            return
        if self._tasks is None:
            raise RuntimeError("FetchPool.start_soon outside FetchPool.opened()")
        self._start_task = self._tasks.create_task(self._start(), name="shoal-fetch-pool")

    async def start(self) -> None:
        """Bring the children up and wait until they are ready (for 30 s at most: then the
        late ones join when ready, and this process fetches meanwhile)."""
        self.start_soon()
        if self._start_task is None:
            return
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                await asyncio.shield(self._start_task)
                for child in list(self._children):
                    await child.ready_event.wait()
        except TimeoutError:
            log.warning("fetch processes slow to start; fetching in this one meanwhile")

    async def _start(self) -> None:
        forked, self._forked = self._forked, []
        for index in range(self._processes):
            if index < len(forked):
                process = forked[index]
            else:
                try:
                    process = spawn()
                except OSError as exc:
                    log.warning("could not start a fetch process (%s); fetching here", exc)
                    return
            child = _Child(self, process)
            self._children.append(child)
            await child.connect(self._child_settings)

    def _child_ready(self, child: _Child) -> None:
        self._ready.append(child)
        self.peak = max(self.peak, len(self._ready))

    def _child_gone(self, child: _Child) -> None:
        if child in self._ready:
            self._ready.remove(child)
            if not self._closing:
                log.warning("a fetch process exited; its requests are fetched again")

    async def fetch(self, request: Request, *, gap: float = 0.0) -> Attempt:
        """One attempt at ``request``, sent ``gap`` seconds at least after the one before to
        its host (its delay, kept where requests are sent: see ``engine.spacing``)."""
        if gap > 0:
            return await self._fetch_spaced(request, gap)
        ready = self._ready
        if not ready:
            self.kept += 1
            return await fetch_in_turn(self._local, self._spacing, request, 0.0)
        child = ready[0]
        if len(ready) > 1:
            fewest = len(child.pending)
            for other in ready:
                if len(other.pending) < fewest:
                    child, fewest = other, len(other.pending)
        # As ``_fetch_in``, without its frame: this is every page's path.
        self._seq += 1
        seq = self._seq
        future = child.submit(seq, request, 0.0, _NEVER)
        try:
            attempt = await future
        except ChildGone:
            return await self.fetch(request)
        except asyncio.CancelledError:
            child.pending.pop(seq, None)
            raise
        self.offloaded += 1
        if attempt.links is not None or attempt.fields_done:
            self.pages_read += 1
        return attempt

    async def _fetch_spaced(self, request: Request, gap: float) -> Attempt:
        """A delayed request, sent by its host's sender (``spacing.HostRoutes``)."""
        host = request.host
        offered = self._child_for(host) if self._ready else None
        sender, after = self._routes.take(host, gap, offered, _alive)
        try:
            if sender is None:
                self.kept += 1
                return await fetch_in_turn(self._local, self._spacing, request, gap, after=after)
            return await self._fetch_in(sender, request, gap, after)
        finally:
            self._routes.done(host, sender)

    async def send_aside(
        self, host: str, gap: float, send: Callable[[], Awaitable[_T]], *, marks_send: bool
    ) -> _T:
        """``send()``, a request of this process's own to ``host`` (its robots.txt) through
        an aiohttp session of this process, in the host's turn, so that the host's requests
        keep their spacing after it too. While the host's requests are in flight in a fetch
        process, it goes without a turn (a robots.txt read again after it expired).

        ``marks_send``: the session ends the turn as the request is written (it was made
        with ``spacing.send_trace``; see ``spacing.marks_sends``). It must, when ``send``
        awaits something else before the request (a store read of shared robots rules):
        otherwise the turn ends as ``send`` is called, and the next request to the host is
        spaced from then, not from when this one went."""
        if gap <= 0:
            return await send()
        sender, after = self._routes.take(host, gap, None, _alive)
        try:
            if sender is not None:
                return await send()
            turn = await self._spacing.take_turn(host, gap, after=after)
            return await send_in_turn(turn, marks_send, send)
        finally:
            self._routes.done(host, sender)

    async def _fetch_in(self, child: _Child, request: Request, gap: float, after: float) -> Attempt:
        self._seq += 1
        seq = self._seq
        future = child.submit(seq, request, gap, after)
        try:
            attempt = await future
        except ChildGone:
            return await self.fetch(request, gap=gap)
        except asyncio.CancelledError:
            child.pending.pop(seq, None)
            raise
        self.offloaded += 1
        if attempt.links is not None or attempt.fields_done:
            self.pages_read += 1
        return attempt

    def _child_for(self, host: str) -> _Child:
        """The ready child offered a host's delayed requests (the next ready one in start
        order if its own is not ready); ``HostRoutes`` moves the host to it between
        requests, so that one ``SendSpacing`` sees all of a host's requests in flight."""
        children = self._children
        first = hash(host) % len(children)
        for step in range(len(children)):
            child = children[(first + step) % len(children)]
            if child.ready:
                return child
        return self._ready[0]

    async def close(self) -> None:
        """Stop the children (and release forked ones never used)."""
        self._closing = True
        if self._start_task is not None:
            self._start_task.cancel()
            # Waits for it to end without raising its cancellation (this task's own
            # cancellation still raises here).
            await asyncio.wait([self._start_task])
        unused = [_Child(self, process) for process in self._forked]
        self._forked = []
        async with asyncio.TaskGroup() as closing:
            for child in self._children + unused:
                closing.create_task(child.close())
        self._children.clear()
        self._ready.clear()
