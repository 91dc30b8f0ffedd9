"""What ``shoal export`` and ``shoal stats`` read out of a store: results (all, or those a
filter selects, read through the store's query), summaries and the failed URLs, for
people (tables) or machines (``--json``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from rich.console import Console

from shoal.cli.exits import EXIT_OUTPUT, EXIT_USAGE, CliFailure
from shoal.cli.jobrun import open_ready_store
from shoal.core.errors import ConfigError
from shoal.core.filters import ResultFilter, parse_statuses
from shoal.core.jobspec import JobSpec
from shoal.core.model import FetchResult, JobInfo, JobSummary
from shoal.core.ports import Store
from shoal.export.records import iso_utc

__all__ = ["export_results", "no_such_job", "result_filter", "show_failed", "show_stats"]


def no_such_job(name: str, jobs: list[JobInfo]) -> str:
    known = ", ".join(j.name for j in jobs[:10]) or "none"
    return f"no job named {name!r} in the store (jobs: {known})"


async def stored_spec(location: str, name: str) -> JobSpec:
    """The spec job ``name`` stored in the store at ``location``, for a command that runs
    it again; a one-line error when there is no such job or its settings are unusable."""
    store = await open_ready_store(location)
    try:
        job = await store.get_job(name)
    finally:
        with contextlib.suppress(Exception):
            await store.close()
    if job is None:
        raise CliFailure(
            f"no job {name!r} in {store.location}; start it with shoal fetch or shoal crawl",
            EXIT_USAGE,
        )
    try:
        return JobSpec.from_record(job.mode, job.config)
    except ConfigError as exc:
        message = f"job {name!r} has settings this shoal cannot use: {exc}"
        raise CliFailure(message, EXIT_USAGE) from None


async def job_named(store: Store, name: str) -> JobInfo:
    job = await store.get_job(name)
    if job is None:
        raise CliFailure(no_such_job(name, await store.list_jobs()), EXIT_USAGE)
    return job


def result_filter(
    statuses: Iterable[str], error_kinds: Iterable[str], *, failed: bool
) -> ResultFilter | None:
    """The filter the export options ask for (None: everything); ``--status`` values may
    be repeated or comma-separated (``2xx,404``)."""
    classes: list[int] = []
    codes: list[int] = []
    kinds: list[str] = []
    try:
        for text in statuses:
            more_classes, more_codes = parse_statuses(text)
            classes.extend(more_classes)
            codes.extend(more_codes)
        for text in error_kinds:
            kinds.extend(k.strip() for k in text.split(","))
        where = ResultFilter(
            status_classes=tuple(dict.fromkeys(classes)),
            statuses=tuple(dict.fromkeys(codes)),
            error_kinds=tuple(dict.fromkeys(kinds)),
            failed=failed,
        )
    except ConfigError as exc:
        raise CliFailure(str(exc), EXIT_USAGE) from None
    return None if where.empty else where


async def export_results(
    location: str,
    job_name: str,
    *,
    fmt: str | None,
    output: str,
    where: ResultFilter | None,
    with_text: bool,
    csv_escape: bool = True,
) -> int:
    from shoal.core.errors import OutputError
    from shoal.export.records import rules_of_job
    from shoal.export.writers import format_for, open_writer

    store = await open_ready_store(location)
    try:
        job = await job_named(store, job_name)
        try:
            kind = format_for(output, fmt)
            writer = open_writer(
                output,
                kind,
                extract=rules_of_job(job.config),
                with_text=with_text,
                escape_formulas=csv_escape,
            )
        except OutputError as exc:
            raise CliFailure(f"output error: {exc}", EXIT_OUTPUT) from None
        except ConfigError as exc:
            raise CliFailure(str(exc), EXIT_USAGE) from None
        rows = 0
        bodies = kind in ("warc", "files") or with_text
        try:
            async for batch in store.iter_results(job.id, with_bodies=bodies, where=where):
                await asyncio.to_thread(writer.write, batch)
                rows += len(batch)
            await asyncio.to_thread(writer.close)
        except OutputError as exc:
            raise CliFailure(f"output error: {exc}", EXIT_OUTPUT) from None
        except ConfigError as exc:
            raise CliFailure(str(exc), EXIT_USAGE) from None
        except BaseException:
            # Nothing half-written is left behind: the partial file goes, the old one stays.
            await asyncio.to_thread(writer.abort)
            raise
        if output != "-":
            what = "results" if where is None else "matching results"
            Console(stderr=True).print(
                f"exported {rows:,} {what} of job {job.name} to {output}",
                markup=False,
                highlight=False,
            )
        return 0
    finally:
        await store.close()


def _json_line(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def summary_record(job: JobInfo, summary: JobSummary) -> dict[str, Any]:
    """A job's summary as JSON-ready values (times as ISO 8601 UTC)."""
    counts = summary.counts
    return {
        "job": job.name,
        "kind": job.mode,
        "created_at": iso_utc(job.created_at),
        "counts": {**asdict(counts), "total": counts.total},
        "by_status_class": summary.by_status_class,
        "by_error_kind": summary.by_error_kind,
        "rejected": summary.rejected,
        "bytes": summary.bytes,
        "p50_ms": summary.p50_ms,
        "p95_ms": summary.p95_ms,
        "first_fetched_at": _iso(summary.first_fetched_at),
        "last_fetched_at": _iso(summary.last_fetched_at),
    }


def _iso(ts: float | None) -> str | None:
    return None if ts is None else iso_utc(ts)


async def show_stats(location: str, job_name: str | None, *, as_json: bool) -> int:
    from rich.table import Table

    from shoal.cli.progress import render_summary

    console = Console()
    store = await open_ready_store(location)
    try:
        if job_name is not None:
            job = await job_named(store, job_name)
            summary = await store.summary(job.id)
            if as_json:
                print(_json_line(summary_record(job, summary)))
            else:
                console.print(render_summary(summary, job=job.name, this_run=None))
            return 0
        jobs = await store.list_jobs()
        if as_json:
            records = []
            for info in jobs:
                counts = await store.counts(info.id)
                records.append(
                    {"job": info.name, "kind": info.mode, **asdict(counts), "total": counts.total}
                )
            print(_json_line({"store": store.location, "jobs": records}))
            return 0
        if not jobs:
            console.print(f"no jobs in {store.location}", markup=False, highlight=False)
            return 0
        table = Table(title=f"jobs in {store.location}", title_justify="left")
        for column in ("job", "mode", "total", "done", "failed", "open"):
            table.add_column(column, justify="right" if column not in ("job", "mode") else "left")
        for info in jobs:
            counts = await store.counts(info.id)
            table.add_row(
                info.name,
                info.mode,
                f"{counts.total:,}",
                f"{counts.done:,}",
                f"{counts.failed:,}",
                f"{counts.open:,}",
            )
        console.print(table)
        return 0
    finally:
        await store.close()


_FAILED = ResultFilter(failed=True)


def _failed_record(result: FetchResult) -> dict[str, Any]:
    return {
        "url": result.url,
        "status": result.status,
        "error_kind": result.error_kind,
        "error": result.error,
    }


async def show_failed(location: str, job_name: str, *, as_json: bool) -> int:
    """Every URL of the job with an error kind or an HTTP status ≥ 400: a JSON array with
    ``--json``, else one aligned line each (status, error kind, URL, error)."""
    store = await open_ready_store(location)
    out = sys.stdout
    try:
        job = await job_named(store, job_name)
        n = 0
        if as_json:
            out.write("[")
        else:
            out.write(f"{'STATUS':>6}  {'ERROR_KIND':<18}  URL  ERROR\n")
        async for batch in store.iter_results(job.id, where=_FAILED):
            if as_json:
                out.write(
                    "".join(
                        ("," if n + i else "") + "\n" + _json_line(_failed_record(r))
                        for i, r in enumerate(batch)
                    )
                )
            else:
                out.write("".join(_failed_line(r) for r in batch))
            n += len(batch)
            out.flush()
        out.write("\n]\n" if as_json else "")
        out.flush()
        if not as_json:
            Console(stderr=True).print(
                f"{n:,} failed URL(s) in job {job.name}", markup=False, highlight=False
            )
        return 0
    finally:
        await store.close()


def _failed_line(result: FetchResult) -> str:
    status = "-" if result.status is None else str(result.status)
    error = " ".join((result.error or "").split())
    return f"{status:>6}  {result.error_kind or '-':<18}  {result.url}  {error}".rstrip() + "\n"
