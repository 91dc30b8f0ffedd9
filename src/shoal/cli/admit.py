"""The input of a job from the command line: lines read and parsed in batches in a
thread, admitted to the job in batches, the invalid ones reported grep-style.

A compressed or binary input is refused whole before anything is touched; with
``--strict``, every line is read and checked before the store is.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import click
from rich.console import Console

from shoal.cli.exits import EXIT_INPUT, EXIT_USAGE, CliFailure
from shoal.core.errors import InputError
from shoal.core.inputs import MAX_LINE_BYTES, SNIFF_BYTES, input_digest, parse_line, sniff_binary
from shoal.core.model import NewRequest
from shoal.core.secrets import HeldSecrets
from shoal.engine.run.runner import AdmitContext

__all__ = [
    "ADMIT_BATCH",
    "FIRST_ADMIT_BATCH",
    "MAX_LINE",
    "SHOWN_INPUT_ERRORS",
    "Admit",
    "AdmitReport",
    "admit_held",
    "admit_lines",
    "all_valid_lines",
    "digest_of",
    "read_all_lines",
    "refuse_binary",
    "report_input",
]

MAX_LINE = MAX_LINE_BYTES
_LINE_SLACK = 5
ADMIT_BATCH = 5000
FIRST_ADMIT_BATCH = 1000
SHOWN_INPUT_ERRORS = 10


@dataclass
class AdmitReport:
    """What reading an input came to: lines valid, admitted and invalid (the first few
    invalid ones kept, to be shown)."""

    lines: int = 0
    valid: int = 0
    admitted: int = 0
    invalid: int = 0
    errors: list[InputError] = field(default_factory=list)

    def valid_of(self, batch: Iterable[NewRequest | InputError]) -> list[NewRequest]:
        """The requests of a parsed batch; its invalid lines are counted (and the first
        few kept) here."""
        requests: list[NewRequest] = []
        for item in batch:
            if isinstance(item, InputError):
                self.invalid += 1
                if len(self.errors) < SHOWN_INPUT_ERRORS:
                    self.errors.append(item)
            else:
                requests.append(item)
        return requests


Admit = Callable[[AdmitContext], Awaitable[AdmitReport]]


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


async def admit_lines(
    stream: BinaryIO,
    context: AdmitContext,
    *,
    now: Callable[[], float],
    secrets: HeldSecrets | None = None,
) -> AdmitReport:
    """Parse every line and admit valid requests in batches; report invalid lines. Header
    values a store may not keep are kept in ``secrets`` (see ``core.secrets``)."""
    store, job = context.store, context.job
    report = AdmitReport()
    reader = _LineReader(stream)
    # A small first batch, so that fetching starts at once; each next batch is read while
    # the one before is being admitted.
    # A read runs in a thread, as a future of the loop's executor (not a task): a thread
    # cannot be cancelled, so a cancelled admission still waits for it (below).
    loop = asyncio.get_running_loop()
    reading = loop.run_in_executor(None, reader.next_batch, FIRST_ADMIT_BATCH)
    try:
        while not context.should_stop():
            batch = await asyncio.shield(reading)
            if batch is None:
                break
            reading = loop.run_in_executor(None, reader.next_batch, ADMIT_BATCH)
            requests = report.valid_of(batch)
            if secrets is not None:
                requests = [secrets.hold(request) for request in requests]
            report.valid += len(requests)
            if requests:
                added = await store.add_requests(job.id, requests, now=now())
                report.admitted += added
                context.on_admitted(added)
    finally:
        # Its thread ends with its batch; only then may the input be closed. A failed read
        # after an earlier failure is not news: its error is retrieved and dropped.
        await asyncio.wait([reading])
        if not reading.cancelled():
            reading.exception()
    return report


@dataclass
class _ReadLines(AdmitReport):
    requests: list[NewRequest] = field(default_factory=list)


def read_all_lines(stream: BinaryIO) -> _ReadLines:
    """Every line of ``stream`` parsed (for ``--strict``, before anything is admitted)."""
    report = _ReadLines()
    reader = _LineReader(stream)
    while (batch := reader.next_batch()) is not None:
        report.requests += report.valid_of(batch)
    report.valid = len(report.requests)
    return report


async def admit_held(
    requests: Sequence[NewRequest], context: AdmitContext, *, now: Callable[[], float]
) -> AdmitReport:
    """Admit requests read (and checked) before the run, in batches."""
    report = AdmitReport(valid=len(requests))
    for start in range(0, len(requests), ADMIT_BATCH):
        if context.should_stop():
            break
        batch = requests[start : start + ADMIT_BATCH]
        added = await context.store.add_requests(context.job.id, batch, now=now())
        report.admitted += added
        context.on_admitted(added)
    return report


def report_input(report: AdmitReport, source: str, console: Console) -> None:
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


def refuse_binary(stream: BinaryIO, source: str) -> None:
    """A compressed, UTF-16 or binary input is refused whole, with one line."""
    try:
        head = stream.peek(SNIFF_BYTES)[:SNIFF_BYTES] if hasattr(stream, "peek") else b""
    except OSError as exc:
        stream.close()
        raise CliFailure(f"{source}: cannot read: {exc.strerror or exc}", EXIT_USAGE) from None
    reason = sniff_binary(head)
    if reason is not None:
        stream.close()
        raise CliFailure(f"{source}: {reason}", EXIT_USAGE)


def digest_of(path: str) -> str | None:
    """The input's content digest (what tells one list from another under one name); None
    for what is not a regular file (a FIFO can be read only once)."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as stream:
            return input_digest(iter(lambda: stream.read(1 << 20), b""))
    except OSError as exc:
        raise click.BadParameter(f"{path}: {exc.strerror}", param_hint="INPUT") from None


def all_valid_lines(stream: BinaryIO, source: str) -> list[NewRequest]:
    """``--strict``: every line parsed; any invalid one ends the command (exit 4)."""
    with stream:
        report = read_all_lines(stream)
    if report.invalid:
        console = Console(stderr=True)
        report_input(report, source, console)
        raise CliFailure(
            f"{report.invalid} invalid input line(s) with --strict; nothing was fetched",
            EXIT_INPUT,
        )
    return report.requests
