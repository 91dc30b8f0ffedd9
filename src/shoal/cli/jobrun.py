"""Running one job from the command line: store, input, output, progress, signals, summary."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from rich.console import Console

from shoal.core.config import CrawlConfig
from shoal.core.errors import ConfigError, InputError, ShoalError, StoreError
from shoal.core.hosts import AutoThrottle
from shoal.core.inputs import MAX_LINE_BYTES, parse_line
from shoal.core.model import FetchResult, JobInfo, NewRequest
from shoal.core.robots import RobotsPolicy
from shoal.engine.crawler import Crawler, Processor
from shoal.export.writers import ResultWriter, format_for, open_writer
from shoal.store import open_store
from shoal.store.base import Store

__all__ = [
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_STORE",
    "EXIT_USAGE",
    "CliFailure",
    "JobRequest",
    "admit_lines",
    "first_shoal_error",
    "run_job",
]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_INPUT = 4
EXIT_INTERRUPTED = 130

MAX_LINE = MAX_LINE_BYTES
_LINE_SLACK = 5
ADMIT_BATCH = 5000
FIRST_ADMIT_BATCH = 1000
SHOWN_INPUT_ERRORS = 10


class CliFailure(Exception):
    """Ends the command with a one-line message and an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class AdmitReport:
    lines: int = 0
    valid: int = 0
    admitted: int = 0
    invalid: int = 0
    errors: list[InputError] = field(default_factory=list)


Admit = Callable[[Store, JobInfo, "AdmitContext"], Awaitable[AdmitReport]]


@dataclass
class JobRequest:
    store: str
    job: str
    mode: str
    config: CrawlConfig
    admit: Admit
    output: str | None
    quiet: bool
    label: str
    config_record: dict[str, Any]
    processor: Processor | None = None
    source: str = "input"
    robots: RobotsPolicy | None = None
    autothrottle: AutoThrottle | None = None
    sitemaps_from_robots: bool = False
    strict_depth: bool = False


class Interrupts:
    """First SIGINT/SIGTERM: graceful stop. Second: leave at once (the store stays consistent)."""

    def __init__(self, console: Console) -> None:
        self.count = 0
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
                "[yellow]stopping: finishing in-flight requests "
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


def first_shoal_error(exc: BaseException) -> ShoalError | None:
    """The first ShoalError inside ``exc`` (TaskGroups wrap failures in exception groups)."""
    if isinstance(exc, ShoalError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = first_shoal_error(inner)
            if found is not None:
                return found
    return None


class _LineReader:
    """Reads an input stream in batches of parsed lines; runs in a worker thread."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._line_no = 0

    def next_batch(self, size: int = ADMIT_BATCH) -> list[NewRequest | InputError] | None:
        try:
            return self._next_batch(size)
        except OSError as exc:  # a read error mid-input (EIO, a vanished mount...)
            name = getattr(self._stream, "name", "the input")
            problem = f"{name}: cannot read line {self._line_no + 1}: {exc.strerror or exc}"
            raise CliFailure(problem, EXIT_USAGE) from None

    def _next_batch(self, size: int) -> list[NewRequest | InputError] | None:
        parsed: list[NewRequest | InputError] = []
        stream = self._stream
        while len(parsed) < size:
            # Room for a byte order mark and "\r\n" around a line of MAX_LINE bytes.
            line = stream.readline(MAX_LINE + _LINE_SLACK)
            if not line:
                break
            self._line_no += 1
            if len(line) == MAX_LINE + _LINE_SLACK and not line.endswith(b"\n"):
                size = len(line) + self._skip_rest_of_line()
                reason = f"line too long ({size:,} bytes, max {MAX_LINE:,})"
                parsed.append(InputError(reason, line_no=self._line_no))
                continue
            try:
                request = parse_line(line, self._line_no)
            except InputError as exc:
                parsed.append(exc)
                continue
            if request is not None:
                parsed.append(request)
        return parsed or None

    def _skip_rest_of_line(self) -> int:
        """Read past the end of an over-long line without holding it; return its bytes."""
        skipped = 0
        while True:
            rest = self._stream.readline(MAX_LINE)
            skipped += len(rest)
            if not rest or rest.endswith(b"\n"):
                return skipped - (1 if rest.endswith(b"\n") else 0)


@dataclass(frozen=True)
class AdmitContext:
    """How an admission reports progress and learns it should stop early."""

    on_admitted: Callable[[int], None]
    should_stop: Callable[[], bool]


async def admit_lines(
    store: Store,
    job: JobInfo,
    stream: BinaryIO,
    context: AdmitContext,
    *,
    strict: bool,
    now: Callable[[], float],
) -> AdmitReport:
    """Parse every line and admit valid requests in batches; report invalid lines.

    With ``strict`` nothing is admitted unless every line is valid.
    """
    report = AdmitReport()
    reader = _LineReader(stream)
    held: list[NewRequest] = []
    # A small first batch, so that fetching starts at once; each next batch is read while
    # the one before is being admitted.
    reading = asyncio.ensure_future(asyncio.to_thread(reader.next_batch, FIRST_ADMIT_BATCH))
    try:
        while not context.should_stop():
            batch = await reading
            if batch is None:
                break
            reading = asyncio.ensure_future(asyncio.to_thread(reader.next_batch, ADMIT_BATCH))
            requests: list[NewRequest] = []
            for item in batch:
                if isinstance(item, InputError):
                    report.invalid += 1
                    if len(report.errors) < SHOWN_INPUT_ERRORS:
                        report.errors.append(item)
                else:
                    requests.append(item)
            report.valid += len(requests)
            if strict:
                held.extend(requests)
            elif requests:
                added = await store.add_requests(job.id, requests, now=now())
                report.admitted += added
                context.on_admitted(added)
    finally:
        with contextlib.suppress(BaseException):
            await reading  # its thread ends with its batch; then the input may be closed
    if strict and report.invalid:
        return report
    for start in range(0, len(held), ADMIT_BATCH):
        added = await store.add_requests(job.id, held[start : start + ADMIT_BATCH], now=now())
        report.admitted += added
        context.on_admitted(added)
    return report


class _ThreadedWriter:
    """Feeds a ResultWriter from one background thread, keeping batch order."""

    def __init__(self, writer: ResultWriter) -> None:
        self._writer = writer
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shoal-output")
        self._pending: list[Future[None]] = []

    def __call__(self, results: Sequence[FetchResult]) -> None:
        self._pending = [f for f in self._pending if not f.done() or f.exception()]
        self._pending.append(self._executor.submit(self._writer.write, list(results)))

    async def write_now(self, results: Sequence[FetchResult]) -> None:
        await asyncio.get_running_loop().run_in_executor(
            self._executor, self._writer.write, list(results)
        )

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._writer.close)
        self._executor.shutdown(wait=True)
        for future in self._pending:
            future.result()


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
        with interrupts.installed():
            return await _run_job(request, store, interrupts, console, time.time)
    finally:
        with contextlib.suppress(Exception):
            await store.close()


async def _run_job(
    request: JobRequest,
    store: Store,
    interrupts: Interrupts,
    console: Console,
    now: Callable[[], float],
) -> int:
    from shoal.cli.progress import Progress, render_summary

    existing = await store.get_job(request.job)
    job = await store.ensure_job(request.job, mode=request.mode, config=request.config_record)
    if existing is not None and existing.mode != request.mode:
        raise CliFailure(
            f"job {request.job!r} is a {existing.mode} job in {store.location}; "
            f"choose another --job name",
            EXIT_USAGE,
        )
    counts = await store.counts(job.id)
    if existing is not None and not request.quiet:
        console.print(
            f"resuming job [bold]{job.name}[/]: {counts.finished:,} of {counts.total:,} "
            "already finished"
        )
    admission: Callable[[Crawler], Awaitable[object]] | None = None
    if _strict(request):
        # Every line must be valid before anything is admitted or fetched.
        context = AdmitContext(lambda _n: None, lambda: interrupts.count > 0)
        report = await request.admit(store, job, context)
        _report_input(report, request.source, console)
        if report.invalid:
            raise CliFailure(
                f"{report.invalid} invalid input line(s) with --strict; nothing was fetched",
                EXIT_INPUT,
            )
    else:

        async def admission(crawler: Crawler) -> None:
            context = AdmitContext(crawler.note_admitted, lambda: crawler.stopping)
            _report_input(await request.admit(store, job, context), request.source, console)

    writer: _ThreadedWriter | None = None
    if request.output:
        try:
            writer = _ThreadedWriter(open_writer(request.output, extract=request.config.extract))
        except ConfigError as exc:
            raise CliFailure(str(exc), EXIT_USAGE) from None
        warc = format_for(request.output) == "warc"
        async for batch in store.iter_results(job.id, with_bodies=warc):
            await writer.write_now(batch)

    crawler = Crawler(
        store,
        job,
        request.config,
        processor=request.processor,
        listeners=[writer] if writer is not None else [],
        robots=request.robots,
        autothrottle=request.autothrottle,
        sitemaps_from_robots=request.sitemaps_from_robots,
        strict_depth=request.strict_depth,
        lease_ttl=_lease_ttl(),
    )
    interrupts.on_first(crawler.stop)
    progress = Progress(crawler.snapshot, label=request.label, console=console, quiet=request.quiet)
    progress_task = asyncio.create_task(progress.run())
    try:
        outcome = await crawler.run(admission)
    except BaseException as exc:
        found = first_shoal_error(exc)
        if isinstance(found, StoreError):
            raise CliFailure(f"store error: {found}", EXIT_STORE) from None
        if isinstance(exc, BaseExceptionGroup):
            failure = exc.subgroup(CliFailure)
            if failure is not None:
                raise failure.exceptions[0] from None
        raise
    finally:
        progress_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await progress_task
        if writer is not None:
            try:
                await writer.close()
            except ConfigError as exc:
                raise CliFailure(str(exc), EXIT_USAGE) from None

    counts = await store.counts(job.id)
    if counts.total == 0 and outcome.completed:
        raise CliFailure("no valid URLs in the input; nothing to do", EXIT_USAGE)
    if not request.quiet:
        summary = await store.summary(job.id)
        console.print(render_summary(summary, job=job.name, this_run=outcome.stats))
        if request.output:
            console.print(f"results written to {request.output}")
    if outcome.completed:
        return EXIT_OK
    console.print(
        f"[yellow]interrupted:[/] {counts.finished:,} of {counts.total:,} "
        "finished; run the same command again to resume"
    )
    return EXIT_INTERRUPTED


def _lease_ttl() -> float:
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


def _strict(request: JobRequest) -> bool:
    return bool(request.config_record.get("strict"))


def _report_input(report: AdmitReport, source: str, console: Console) -> None:
    """Invalid lines, one grep-style line each (the first few), then the count."""
    if not report.invalid:
        return
    for error in report.errors:
        console.print(
            f"shoal: {source}:{error.line_no}: {error.reason}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    more = report.invalid - len(report.errors)
    tail = f" (first {len(report.errors)} shown)" if more > 0 else ""
    console.print(
        f"shoal: {report.invalid:,} invalid input line(s) skipped{tail}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
