"""``TestWeb``: one aiohttp application served on many loopback addresses."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from aiohttp import web

from shoal.testweb import site
from shoal.testweb._app import build_app
from shoal.testweb._revisions import RevisionCounts, revision_counts
from shoal.testweb._state import SeenRequest, ServerState
from shoal.testweb._stats import TestWebStats
from shoal.testweb.site import SiteSpec

__all__ = ["TestWeb"]

logger = logging.getLogger("shoal.testweb")

_T = TypeVar("_T")
_BIND_ATTEMPTS = 8
_SHUTDOWN_TIMEOUT = 5.0  # waiting handlers are woken at shutdown; this bounds the rest
_THREAD_TIMEOUT = 30.0


class TestWeb:
    """A synthetic website on ``spec.hosts`` loopback addresses, one port for all.

    ::

        async with TestWeb(SiteSpec(hosts=4, pages=50)) as web:
            url = web.url(2, "/page/7")       # http://127.0.0.4:PORT/page/7
            ...
            assert web.stats().hosts[2].max_in_flight <= 2

    ``addresses`` replaces the default ``127.0.0.{first_address + i}`` (one per
    host); ``port`` 0 picks a free port (the same on every address). Routes in
    ``extra_routes`` are served beside the built-in ones. ``record=False``
    keeps counts and in-flight maxima but no per-request log.

    :meth:`stats` and :meth:`reset_stats` may be called from any thread: from
    another thread they run on the server's loop. For sync tests and tests
    that run shoal in a subprocess, :meth:`run_in_thread` serves from a
    thread of its own.
    """

    __test__ = False  # a name pytest would otherwise try to collect

    def __init__(
        self,
        spec: SiteSpec | None = None,
        *,
        addresses: Sequence[str] | None = None,
        port: int = 0,
        extra_routes: Iterable[web.AbstractRouteDef] = (),
        record: bool = True,
        backlog: int = 1024,
    ) -> None:
        self._spec = spec if spec is not None else SiteSpec()
        self._addresses = list(addresses) if addresses is not None else self._spec.addresses
        if len(self._addresses) != self._spec.hosts:
            raise ValueError(
                f"{len(self._addresses)} address(es) given for a site of {self._spec.hosts} host(s)"
            )
        if len(set(self._addresses)) != len(self._addresses):
            raise ValueError(f"addresses must be distinct, got {self._addresses}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in [0, 65535], got {port}")
        self._requested_port = port
        self._extra_routes = list(extra_routes)
        self._record = record
        self._backlog = backlog
        self._port = 0
        self._state: ServerState | None = None
        self._runner: web.AppRunner | None = None
        self._sockets: list[socket.socket] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Bind every address and start serving."""
        if self._state is not None:
            raise RuntimeError("TestWeb already started")
        sockets = _bind_all(self._addresses, self._requested_port, self._backlog)
        self._port = sockets[0].getsockname()[1]
        base_urls = [f"http://{_host_literal(address)}:{self._port}" for address in self._addresses]
        state = ServerState(self._spec, self._addresses, base_urls, keep_log=self._record)
        runner = web.AppRunner(
            build_app(state, self._extra_routes),
            handle_signals=False,
            access_log=None,  # one log line per request would dominate benchmarks
            handler_cancellation=True,  # a client that gives up ends its handler
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
        )
        try:
            await runner.setup()
            for sock in sockets:
                await web.SockSite(runner, sock, backlog=self._backlog).start()
        except BaseException:
            await runner.cleanup()
            for sock in sockets:
                sock.close()
            raise
        self._state = state
        self._runner = runner
        self._sockets = sockets
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        logger.debug("testweb serving %s", " ".join(base_urls))

    async def close(self) -> None:
        """Stop serving; waiting handlers (``/stall``, ``/delay``) are woken and dropped.

        :meth:`stats` still answers afterwards. Closing twice is harmless.
        """
        runner, self._runner = self._runner, None
        if runner is None:
            return
        if self._state is not None:
            self._state.begin_close()
        try:
            await self._stop_accepting()
            await runner.cleanup()
        finally:
            self._loop = None
            self._loop_thread = None
            logger.debug("testweb closed")

    async def _stop_accepting(self) -> None:
        """Let connections already accepted reach the server before it closes.

        asyncio's selector loop (3.11) creates the transport of an accepted
        connection one loop turn after ``accept()``; closing the server in
        between leaks that socket (and logs an AssertionError). Stop reading
        the listening sockets first, then let those turns pass.
        """
        loop = asyncio.get_running_loop()
        if not isinstance(loop, asyncio.SelectorEventLoop):
            return
        for sock in self._sockets:
            if sock.fileno() != -1:
                loop.remove_reader(sock.fileno())
        for _ in range(2):
            await asyncio.sleep(0)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @classmethod
    @contextlib.contextmanager
    def run_in_thread(cls, spec: SiteSpec | None = None, **kwargs: Any) -> Iterator[TestWeb]:
        """Serve from a daemon thread with its own event loop for the ``with`` block.

        ``kwargs`` are those of :class:`TestWeb`. Startup errors are raised here.
        """
        with serve_in_thread(cls(spec, **kwargs), name="shoal-testweb") as server:
            yield server

    # -- addresses ---------------------------------------------------------

    @property
    def spec(self) -> SiteSpec:
        return self._spec

    @property
    def addresses(self) -> list[str]:
        """The local addresses of the hosts, host 0 first."""
        return list(self._addresses)

    @property
    def port(self) -> int:
        """The port every host listens on (0 before :meth:`start`)."""
        return self._port

    @property
    def base_urls(self) -> list[str]:
        """``http://ADDRESS:PORT`` of each host, host 0 first."""
        return list(self._require_state().base_urls)

    def url(self, host_index: int, path: str = "/") -> str:
        """The absolute URL of ``path`` on host ``host_index``."""
        base_urls = self._require_state().base_urls
        if not 0 <= host_index < len(base_urls):
            raise IndexError(f"host index {host_index} out of range for {len(base_urls)} host(s)")
        return base_urls[host_index] + (path if path.startswith("/") else "/" + path)

    def expected_pages(
        self,
        *,
        host: int | Iterable[int] = 0,
        depth: int | None = None,
        cross_host: bool = True,
    ) -> set[str]:
        """:func:`shoal.testweb.expected_pages` for this server's spec and base URLs."""
        return site.expected_pages(
            self._spec, self.base_urls, host=host, depth=depth, cross_host=cross_host
        )

    # -- recording ---------------------------------------------------------

    def stats(self) -> TestWebStats:
        """A snapshot of what every host served since start or the last reset."""
        state = self._require_state()
        return self._on_loop(state.recorder.snapshot)

    def seen(self) -> list[SeenRequest]:
        """Requests the header-recording endpoints (``/echo``, ``/login``...) received,
        oldest first, with every header."""
        state = self._require_state()
        return self._on_loop(lambda: list(state.seen))

    def set_revision(self, revision: int) -> None:
        """Move the ``/rev/`` pages to ``revision`` (0 at start): even pages change, page 5
        is gone and pages 6 and 7 appear from revision 1 (see ``_revisions``)."""
        if revision < 0:
            raise ValueError(f"revision must be ≥ 0, got {revision}")
        state = self._require_state()

        def move() -> None:
            state.revision = revision

        self._on_loop(move)

    def revisions(self) -> RevisionCounts:
        """Conditional requests the ``/rev/`` pages received and 304s they served, since
        start or the last ``reset_stats``."""
        state = self._require_state()
        return self._on_loop(lambda: revision_counts(state))

    def reset_stats(self) -> None:
        """Forget recorded requests and stateful counters (``/flaky``)."""
        state = self._require_state()
        self._on_loop(state.reset)

    def _require_state(self) -> ServerState:
        if self._state is None:
            raise RuntimeError("TestWeb is not started; use 'async with' or await start()")
        return self._state

    def _on_loop(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the server's loop: at once from its thread, else via the loop."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            return fn()
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout=_THREAD_TIMEOUT)


def _host_literal(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _listen(address: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _bind_all(addresses: Sequence[str], port: int, backlog: int) -> list[socket.socket]:
    """Listen on every address with one port: ``port``, or a free one found on the first."""
    attempts = _BIND_ATTEMPTS if port == 0 else 1
    for attempt in range(1, attempts + 1):
        sockets: list[socket.socket] = []
        address = addresses[0]
        try:
            sockets.append(_listen(address, port, backlog))
            chosen = sockets[0].getsockname()[1]
            for address in addresses[1:]:
                sockets.append(_listen(address, chosen, backlog))
            return sockets
        except OSError as exc:
            for sock in sockets:
                sock.close()
            if exc.errno == errno.EADDRINUSE and attempt < attempts:
                continue
            hint = ""
            if exc.errno == errno.EADDRNOTAVAIL:
                hint = " (on macOS, add it first: sudo ifconfig lo0 alias ADDRESS up)"
            raise OSError(exc.errno, f"cannot listen on {address}: {exc.strerror}{hint}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


class _Served(Protocol):
    _loop: asyncio.AbstractEventLoop | None

    async def start(self) -> Any: ...

    async def close(self) -> None: ...


_S = TypeVar("_S", bound=_Served)


@contextlib.contextmanager
def serve_in_thread(server: _S, *, name: str, timeout: float = _THREAD_TIMEOUT) -> Iterator[_S]:
    """Run ``server`` (started with ``start()``, stopped with ``close()``) on its own event
    loop in a daemon thread for the ``with`` block. Startup errors are raised here."""
    ready: concurrent.futures.Future[asyncio.Event] = concurrent.futures.Future()

    async def serve() -> None:
        stop = asyncio.Event()
        try:
            await server.start()
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(stop)
        try:
            await stop.wait()
        finally:
            await server.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name=name, daemon=True)
    thread.start()
    try:
        stop = ready.result(timeout=timeout)
    except BaseException:
        thread.join(timeout)
        raise
    loop = server._loop
    assert loop is not None
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"{name} thread did not stop within {timeout} s")


class StreamServer:
    """A loopback TCP server on an ephemeral port that hands each connection to
    ``_serve``; ``start()``/``close()``, or ``run_in_thread()`` in tests."""

    scheme = "tcp"

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self._host = host
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self._host}:{self.port}"

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._serve, self._host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._closing()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def _closing(self) -> None:
        """Called as the server stops taking connections, before it waits for them."""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    @classmethod
    @contextlib.contextmanager
    def run_in_thread(cls, **kwargs: Any) -> Iterator[Self]:
        with serve_in_thread(cls(**kwargs), name=f"shoal-testweb-{cls.__name__}") as server:
            yield server
