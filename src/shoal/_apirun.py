"""How the Python API runs one job: the store, the stream of results, hooks, errors.

``stream_job`` runs a job on an open store and yields results as the crawler
commits them (see ``shoal.api`` for the backpressure rules). ``opened_store``
opens a store by location, or a temporary one. ``request_headers`` turns the
per-host headers and auth a user gives into the crawler's ``before_fetch``.
``unwrapped`` turns what a TaskGroup raises into one error: the API never
raises an ``ExceptionGroup``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from shoal.core.config import check_header_value, check_host_name
from shoal.core.errors import ConfigError, ShoalError
from shoal.core.jobspec import JobSpec
from shoal.core.model import FetchResult, Header, JobInfo, NewRequest, Request
from shoal.core.ports import Store
from shoal.core.revisit import Recrawl
from shoal.core.secrets import HeldSecrets
from shoal.engine.run.runner import AdmitContext, JobRunner, Refetch
from shoal.store import open_store

__all__ = [
    "HeadersFor",
    "RunHandle",
    "opened_store",
    "request_headers",
    "stream_job",
    "unwrapped",
]

_ADMIT_CHUNK = 1000

HeadersFor: TypeAlias = Mapping[str, Mapping[str, str]] | Callable[[str], Mapping[str, str] | None]
"""Extra request headers by host: ``{"api.example.com": {"Authorization": "Bearer …"}}``,
or a function of the host name returning them (or None)."""


@dataclass
class RunHandle:
    """What a caller may need of a running job: its row, and its runner (to stop it)."""

    job: JobInfo | None = None
    runner: JobRunner | None = None


class _HookFailed(Exception):
    """A user's hook raised ``original`` inside the crawler's TaskGroup."""

    def __init__(self, original: Exception) -> None:
        super().__init__(str(original))
        self.original = original


def unwrapped(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error to raise for what a TaskGroup raised.

    The first ``ShoalError`` inside; else an exception a user's hook raised, as it
    was; else ``KeyboardInterrupt``, ``SystemExit`` or a cancellation as they are;
    else (a bug in shoal) a ``ShoalError`` that names it.
    """
    leaves = list(_leaves(group))
    for leaf in leaves:
        if isinstance(leaf, ShoalError):
            return leaf
    for leaf in leaves:
        if isinstance(leaf, _HookFailed):
            return leaf.original
    for leaf in leaves:
        if not isinstance(leaf, Exception):
            return leaf
    first = leaves[0]
    error = ShoalError(f"internal error: {type(first).__name__}: {first}")
    error.__cause__ = group
    return error


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def request_headers(
    headers: HeadersFor | None, auth: Mapping[str, tuple[str, str]] | None
) -> Callable[[Request], Request] | None:
    """The crawler's ``before_fetch`` for per-host ``headers`` and basic ``auth``.

    Hosts are names without a port, matched case-insensitively. A request's own
    headers (a JSON input line's) win over the per-host ones of the same name.
    The added headers are sent, never stored. Checked here: a bad mapping
    raises ``ConfigError`` before anything runs; a function's answer is checked
    per request.
    """
    if headers is None and auth is None:
        return None
    static: dict[str, tuple[Header, ...]] = {}
    if isinstance(headers, Mapping):
        for host, values in headers.items():
            static[_host_key(host)] = _checked_headers(values, f"headers for {host!r}")
    elif headers is not None and not callable(headers):
        raise ConfigError(
            f"headers must be a mapping of host to headers, or a function; got {headers!r}"
        )
    for host, credentials in (auth or {}).items():
        if (
            not isinstance(credentials, tuple)
            or len(credentials) != 2
            or not all(isinstance(part, str) for part in credentials)
        ):
            raise ConfigError(f"auth for {host!r} must be a (user, password) tuple of str")
        user, password = credentials
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        key = _host_key(host)
        kept = tuple(h for h in static.get(key, ()) if h[0].lower() != "authorization")
        static[key] = (*kept, ("Authorization", f"Basic {token}"))
    function = headers if callable(headers) and not isinstance(headers, Mapping) else None

    def before_fetch(request: Request) -> Request:
        extra = static.get(request.host, ())
        if function is not None:
            try:
                answer = function(request.host)
            except Exception as exc:  # noqa: BLE001 - re-raised as the user's own error
                raise _HookFailed(exc) from exc
            if answer:
                extra = (*extra, *_checked_headers(answer, f"headers_for({request.host!r})"))
        if not extra:
            return request
        own = {name.lower() for name, _ in request.headers}
        merged = tuple(h for h in extra if h[0].lower() not in own) + request.headers
        return dataclasses.replace(request, headers=merged)

    return before_fetch


def _then(
    first: Callable[[Request], Request], second: Callable[[Request], Request] | None
) -> Callable[[Request], Request]:
    if second is None:
        return first
    return lambda request: second(first(request))


def _host_key(host: str) -> str:
    check_host_name("a host", host)
    return host.strip().lower().rstrip(".")


def _checked_headers(values: object, what: str) -> tuple[Header, ...]:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{what} must be a mapping of header name to value, got {values!r}")
    checked: list[Header] = []
    for name, value in values.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigError(f"{what}: header names and values must be str")
        if not name.strip() or ":" in name:
            raise ConfigError(f"{what}: {name!r} is not a valid header")
        check_header_value(f"{what}: {name!r}", name)
        check_header_value(f"{what}: {name!r}", value)
        checked.append((name.strip(), value))
    return tuple(checked)


@contextlib.asynccontextmanager
async def opened_store(location: str | None) -> AsyncIterator[Store]:
    """The store at ``location``, opened; without one, a temporary SQLite file removed
    afterwards."""
    temp_dir: str | None = None
    if location is None:
        temp_dir = await asyncio.to_thread(tempfile.mkdtemp, prefix="shoal-")
        location = os.path.join(temp_dir, "shoal.db")
    try:
        backend = open_store(location)
        await backend.open()
        try:
            yield backend
        finally:
            with contextlib.suppress(Exception):
                await backend.close()
    finally:
        if temp_dir is not None:
            await asyncio.to_thread(shutil.rmtree, temp_dir, ignore_errors=True)


async def stream_job(
    spec: JobSpec,
    requests: Sequence[NewRequest],
    *,
    backend: Store,
    job: str | None,
    fresh: bool = False,
    refetch: Refetch | None = None,
    recrawl: Recrawl | None = None,
    max_buffered: int | None = None,
    before_fetch: Callable[[Request], Request] | None = None,
    handle: RunHandle | None = None,
) -> AsyncGenerator[FetchResult, None]:
    """Run one job through the runner, yielding results as they are committed (see
    ``shoal.api``). ``requests`` are a fetch job's; a crawl's seeds are in its spec."""
    # Header values a store may not keep stay here, and go back on just before sending.
    held = HeldSecrets()
    requests = [held.hold(r) for r in requests]
    if len(held):
        before_fetch = _then(held.restore, before_fetch)
    pending: deque[FetchResult] = deque()
    arrived = asyncio.Event()  # a batch was committed, or the run ended
    drained = asyncio.Event()  # the consumer has caught up (or we are stopping)

    def on_results(batch: Sequence[FetchResult]) -> None:
        # Called on the loop by the crawler's flusher: never block here.
        pending.extend(batch)
        arrived.set()

    runner = JobRunner(
        backend,
        spec,
        name=job,
        fresh=fresh,
        refetch=refetch,
        recrawl=recrawl,
        listeners=[on_results],
        before_fetch=before_fetch,
    )
    info = await runner.open()
    if handle is not None:
        handle.job, handle.runner = info, runner

    # Requests admitted by this call and not yet yielded: what a slow consumer holds.
    outstanding = 0
    chunk_size = min(_ADMIT_CHUNK, max_buffered or _ADMIT_CHUNK)

    async def admission(context: AdmitContext) -> None:
        nonlocal outstanding
        for start in range(0, len(requests), chunk_size):
            while (
                max_buffered is not None
                and outstanding >= max_buffered
                and not context.should_stop()
            ):
                drained.clear()
                await drained.wait()
            if context.should_stop():
                return
            chunk = requests[start : start + chunk_size]
            added = await backend.add_requests(info.id, chunk, now=time.time())
            outstanding += added
            context.on_admitted(added)

    # Not in a TaskGroup: an async generator cannot hold one open across its yields.
    # The task is always awaited to its end, by the ``finally`` below (``_finish``).
    try:
        run_task = asyncio.create_task(
            runner.run(admission if requests else None), name="shoal-api-run"
        )
    except BaseException:
        await runner.close()
        raise
    run_task.add_done_callback(lambda _task: arrived.set())
    try:
        low_water = (max_buffered or 0) // 2
        while True:
            while pending:
                result = pending.popleft()
                outstanding -= 1
                if outstanding <= low_water:
                    drained.set()
                yield result
            if run_task.done():
                break
            arrived.clear()
            await arrived.wait()
        try:
            await run_task  # raises what the run raised
        except BaseExceptionGroup as group:
            error = unwrapped(group)
            raise error from (group if error.__cause__ is group else None)
    finally:
        runner.stop()
        drained.set()
        await _finish(run_task)


async def _finish(task: asyncio.Task[Any]) -> None:
    """Wait for a stopping run; if we are cancelled meanwhile, cancel it and still wait."""
    try:
        await asyncio.wait({task})
    except asyncio.CancelledError:
        task.cancel()
        await asyncio.wait({task})
        raise
    finally:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved here; the normal path has raised it already
