"""Running one job from the command line: store, output, progress, signals, summary."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from array import array
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from rich.console import Console

from shoal.cli.admit import Admit, report_input
from shoal.cli.exits import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_STORE,
    EXIT_USAGE,
    CliFailure,
    first_shoal_error,
)
from shoal.core.errors import ConfigError, JobConflict, OutputError, StoreError
from shoal.core.jobspec import JobSpec
from shoal.core.model import FetchResult, JobInfo
from shoal.core.ports import Store
from shoal.core.revisit import Recrawl
from shoal.core.secrets import HeldSecrets
from shoal.engine.fetch.cookies import JobCookies
from shoal.engine.run.runner import Admission, AdmitContext, JobRunner, Refetch
from shoal.export.writers import ResultWriter, format_for, open_writer
from shoal.store import open_store

__all__ = ["Interrupts", "JobRequest", "emitting", "lease_ttl", "open_ready_store", "run_job"]


@dataclass
class JobRequest:
    """One command's job: the spec, where to run it, and what the command adds (input,
    ``-o``, progress)."""

    store: str
    spec: JobSpec
    name: str | None
    command: str
    output: str | None = None
    output_format: str | None = None
    quiet: bool = False
    admit: Admit | None = None
    source: str = "input"
    fresh: bool = False
    refetch: Refetch | None = None
    recrawl: Recrawl | None = None
    join: bool = False
    csv_escape: bool = True
    held: HeldSecrets = field(default_factory=HeldSecrets)
    emit: str | None = None
    """A broker URL to publish every result to as it lands (``--emit``)."""
    cookies: JobCookies | None = None
    save_cookies: str | None = None


class Interrupts:
    """First SIGINT/SIGTERM: graceful stop. Second: leave at once (the store stays consistent)."""

    def __init__(self, console: Console) -> None:
        self.count = 0
        self.grace = 10.0  # the run's shutdown grace, once it has one
        self._console = console
        self._on_first: Callable[[], None] | None = None

    def on_first(self, callback: Callable[[], None]) -> None:
        self._on_first = callback
        if self.count:
            callback()

    def __call__(self) -> None:
        self.count += 1
        if self.count == 1:
            self._console.print(
                f"[yellow]stopping: finishing in-flight requests for up to {self.grace:g} s "
                "(press Ctrl-C again to quit at once)[/]"
            )
            if self._on_first is not None:
                self._on_first()
        else:
            os._exit(EXIT_INTERRUPTED)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


class _ThreadedWriter:
    """Feeds a ResultWriter from one background thread, keeping batch order.

    The first failure to write (a full disk) calls ``on_failure`` once, and no batch is
    written after it; ``close`` then removes the file and raises that failure, so an
    output is never put in place with rows missing.
    """

    def __init__(self, writer: ResultWriter) -> None:
        self._writer = writer
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shoal-output")
        self._failure: BaseException | None = None
        self.on_failure: Callable[[], None] = lambda: None
        self._closed = False

    def _write(self, results: list[FetchResult]) -> None:
        if self._failure is not None:
            return
        try:
            self._writer.write(results)
        except BaseException as exc:
            self._failure = exc
            raise

    def __call__(self, results: Sequence[FetchResult]) -> None:
        if self._failure is not None:
            return
        loop = asyncio.get_running_loop()
        future = self._executor.submit(self._write, list(results))
        future.add_done_callback(lambda f: self._check(f, loop))

    def _check(self, future: Future[None], loop: asyncio.AbstractEventLoop) -> None:
        if not future.cancelled() and future.exception() is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the run is over
                loop.call_soon_threadsafe(self.on_failure)

    async def write_now(self, results: Sequence[FetchResult]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._write, list(results))

    async def close(self, *, keep: bool = True) -> None:
        """Wait for every batch, then put the file in place (or remove it: not ``keep``).
        Only the first call does anything."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, lambda: None)  # every batch before it
        finish = self._writer.close if keep and self._failure is None else self._writer.abort
        try:
            await loop.run_in_executor(self._executor, finish)
        finally:
            self._executor.shutdown(wait=True)
        if self._failure is not None:
            raise self._failure


async def open_ready_store(location: str) -> Store:
    try:
        store = open_store(location)
    except ConfigError as exc:
        raise CliFailure(str(exc), EXIT_USAGE) from None
    try:
        await store.open()
    except StoreError as exc:
        raise CliFailure(f"store error: {exc}", EXIT_STORE) from None
    return store


async def run_job(request: JobRequest, console: Console) -> int:
    import time

    interrupts = Interrupts(console)
    store = await open_ready_store(request.store)
    try:
        async with emitting(request.emit) as emit:
            with interrupts.installed():
                return await _run_job(request, store, interrupts, console, time.time, emit)
    finally:
        with contextlib.suppress(Exception):
            await store.close()


@contextlib.asynccontextmanager
async def emitting(
    url: str | None,
) -> AsyncIterator[Callable[[str, Sequence[FetchResult]], None] | None]:
    """``--emit``: a publisher of results while the block runs (None without a URL); at
    the end, every result handed to it is confirmed by the broker."""
    if url is None:
        yield None
        return
    from shoal.queue import BrokerUnavailable, ResultEmitter

    emitter = ResultEmitter(url)
    try:
        await emitter.open()
    except ConfigError as exc:
        raise CliFailure(str(exc), EXIT_USAGE) from None
    except BrokerUnavailable as exc:
        raise CliFailure(f"broker error: {exc}", EXIT_STORE) from None
    try:
        yield emitter.emit
    finally:
        await emitter.close()


class _Output:
    """``-o``: the job's whole result set, each URL once. Results already in the store are
    written first, then each batch as it is committed; at the end, whatever other
    processes (workers) recorded meanwhile is added."""

    def __init__(self, path: str, fmt: str | None, spec: JobSpec, *, csv_escape: bool) -> None:
        # Opened before the job is touched: a second run writing the same file is refused
        # here (the file is locked), before any work.
        try:
            self.writer = _ThreadedWriter(
                open_writer(path, fmt, extract=spec.config.extract, escape_formulas=csv_escape)
            )
            self.bodies = format_for(path, fmt) == "warc"
        except OutputError as exc:
            raise CliFailure(f"output error: {exc}", EXIT_OUTPUT) from None
        except ConfigError as exc:
            raise CliFailure(str(exc), EXIT_USAGE) from None
        self.path = path
        self.written = array("q")
        self.live = False

    def __call__(self, results: Sequence[FetchResult]) -> None:
        if self.live:
            self.written.extend(result.request_id for result in results)
            self.writer(results)

    async def catch_up(self, store: Store, job: JobInfo) -> int:
        """Write every result of the job not written yet; return how many."""
        done = set(self.written)
        added = 0
        async for batch in store.iter_results(job.id, with_bodies=self.bodies):
            new = [result for result in batch if result.request_id not in done]
            if new:
                self.written.extend(result.request_id for result in new)
                await self.writer.write_now(new)
                added += len(new)
        return added

    async def close(self, *, keep: bool = True) -> None:
        """Put the file in place (``keep``: the run ended without an error) or remove it."""
        try:
            await self.writer.close(keep=keep)
        except OutputError as exc:
            raise CliFailure(f"output error: {exc}", EXIT_OUTPUT) from None
        except ConfigError as exc:
            raise CliFailure(str(exc), EXIT_USAGE) from None


async def _run_job(
    request: JobRequest,
    store: Store,
    interrupts: Interrupts,
    console: Console,
    now: Callable[[], float],
    emit: Callable[[str, Sequence[FetchResult]], None] | None = None,
) -> int:
    from shoal.cli.progress import Progress, render_summary

    output = (
        _Output(request.output, request.output_format, request.spec, csv_escape=request.csv_escape)
        if request.output
        else None
    )
    listeners: list[Callable[[Sequence[FetchResult]], None]] = []
    if output is not None:
        listeners.append(output)
    if emit is not None:
        # The job's name is known once the runner has opened it (before any result).
        listeners.append(lambda batch: emit(runner.job.name, batch))
    runner = JobRunner(
        store,
        request.spec,
        name=request.name,
        fresh=request.fresh,
        refetch=request.refetch,
        recrawl=request.recrawl,
        join=request.join,
        listeners=listeners,
        cookies=request.cookies,
        lease_ttl=lease_ttl(),
        before_fetch=request.held.restore,
    )
    try:
        job = await runner.open()
    except JobConflict as exc:
        raise CliFailure(str(exc), EXIT_USAGE) from None
    try:
        counts = await store.counts(job.id)
        if not request.quiet:
            for note in runner.notes:
                console.print(note, markup=False, highlight=False)
            if runner.resumed and not request.join:
                console.print(
                    f"resuming job [bold]{job.name}[/]: {counts.finished:,} of "
                    f"{counts.total:,} already finished"
                )
        if output is not None and request.recrawl is None:
            await output.catch_up(store, job)
            output.live = True
        # A recrawl replaces results as it goes: its -o is written from the store at the
        # end, each URL's current result once.
    except BaseException:
        await runner.close()
        if output is not None:
            await output.close(keep=False)
        raise

    admission: Admission | None = None
    admit = request.admit
    if admit is not None and runner.resumed and counts.open > 0:
        # Resuming: the input is read again before anything is fetched, so that the rows
        # left open get back the header values the store does not keep (core.secrets).
        try:
            context = AdmitContext(store, job, lambda _n: None, lambda: interrupts.count > 0)
            report_input(await admit(context), request.source, console)
        except BaseException:
            await runner.close()
            if output is not None:
                await output.close(keep=False)
            raise
    elif admit is not None:

        async def admission(context: AdmitContext) -> None:
            report_input(await admit(context), request.source, console)

    crawler = runner.crawler
    interrupts.grace = crawler.shutdown_grace
    interrupts.on_first(runner.stop)
    if output is not None:
        # A full disk under -o: stop fetching (what was fetched is in the store) and fail.
        output.writer.on_failure = runner.stop
    label = f"{request.command} {job.name}"
    progress = Progress(crawler.snapshot, label=label, console=console, quiet=request.quiet)
    try:
        async with asyncio.TaskGroup() as tasks:
            showing = tasks.create_task(progress.run(), name="shoal-progress")
            try:
                outcome = await runner.run(admission)
            finally:
                showing.cancel()
        counts = await store.counts(job.id)
        if output is not None:
            output.live = False
            if counts.finished > len(output.written):
                await output.catch_up(store, job)  # results other workers recorded
    except BaseException as exc:
        if output is not None:
            # Never put in place with rows missing: a failed run's output is removed.
            output.live = False
            # The run's own error is what is reported; a failure removing the partial
            # output must not replace it.
            with contextlib.suppress(Exception):
                await output.close(keep=False)
        found = first_shoal_error(exc)
        if isinstance(found, StoreError):
            raise CliFailure(f"store error: {found}", EXIT_STORE) from None
        if isinstance(found, OutputError):
            raise CliFailure(f"output error: {found}", EXIT_OUTPUT) from None
        if isinstance(exc, BaseExceptionGroup):
            failure = exc.subgroup(CliFailure)
            if failure is not None:
                raise failure.exceptions[0] from None
        raise
    if output is not None:
        output.live = False
        await output.close()
    if request.save_cookies and runner.cookies is not None:
        try:
            await asyncio.to_thread(runner.cookies.save, request.save_cookies)
        except ConfigError as exc:
            raise CliFailure(str(exc), EXIT_USAGE) from None

    if counts.total == 0 and outcome.completed:
        raise CliFailure("no valid URLs in the input; nothing to do", EXIT_USAGE)
    if not request.quiet:
        summary = await store.summary(job.id)
        console.print(
            render_summary(
                summary, job=job.name, this_run=outcome.stats, recrawl=request.recrawl is not None
            )
        )
        console.print(_where(store, job, request.output), markup=False, highlight=False)
    if outcome.completed:
        return EXIT_OK
    left = (
        f"; {outcome.cut_off:,} still running at the {interrupts.grace:g} s grace "
        "left for the next run"
        if outcome.cut_off
        else ""
    )
    console.print(
        f"[yellow]interrupted:[/] {counts.finished:,} of {counts.total:,} "
        f"finished{left}; run the same command again to resume"
    )
    return EXIT_INTERRUPTED


def _where(store: Store, job: JobInfo, output: str | None) -> str:
    """The closing line: where the results are."""
    place = f"results: job {job.name} in {store.location}"
    if output and output != "-":
        return f"{place}, and all of them in {output}"
    return f"{place} (shoal export --job {job.name} -o FILE)"


def lease_ttl() -> float:
    """Seconds a lease (and a host's ownership) lasts unrenewed: how soon the fleet takes
    over from a worker that vanished without a trace (SHOAL_LEASE_TTL, default 60)."""
    text = os.environ.get("SHOAL_LEASE_TTL", "60")
    try:
        ttl = float(text)
    except ValueError:
        ttl = -1.0
    if not 1.0 <= ttl <= 86_400.0:
        raise CliFailure(f"SHOAL_LEASE_TTL must be seconds in [1, 86400], got {text!r}", EXIT_USAGE)
    return ttl
