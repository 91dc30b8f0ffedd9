"""The ``shoal`` command."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from shoal.cli.jobrun import (
    EXIT_INTERNAL,
    EXIT_USAGE,
    AdmitContext,
    CliFailure,
    JobRequest,
    admit_lines,
    open_ready_store,
    run_job,
)
from shoal.cli.options import (
    EXIT_CODES,
    build_config,
    load_toml_defaults,
    read_store_option,
    run_options,
)
from shoal.core.model import JobInfo, job_name
from shoal.engine.resources import run_loop
from shoal.export.writers import FORMATS
from shoal.store.base import Store

__all__ = ["cli", "main"]

_COMMANDS_WITH_CONFIG = ["fetch", "crawl", "export", "stats"]


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        ctx.default_map = load_toml_defaults(value, _COMMANDS_WITH_CONFIG)
    return value


class _LazyGroup(click.Group):
    """Commands that need heavy imports (the test site, the demo) load on first use."""

    lazy = {
        "crawl": "shoal.cli.crawl:crawl",
        "demo": "shoal.cli.demo:demo",
        "testweb": "shoal.testweb.cli:testweb",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        import importlib

        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES,
)
@click.version_option(package_name="shoal")
@click.option(
    "--config",
    metavar="FILE",
    envvar="SHOAL_CONFIG",
    is_eager=True,
    expose_value=False,
    callback=_load_config,
    help="TOML file of option defaults (top-level keys, or [fetch]/[crawl] tables).",
)
def cli() -> None:
    """shoal fetches and crawls the web: fast, polite, and resumable.

    \b
    Quick start:
      shoal fetch urls.txt -o results.jsonl     fetch every URL in a file
      shoal stats                               what the store holds
      shoal export --job urls -o urls.csv       results of a job as CSV/JSONL

    Every run is recorded in a store (an SQLite file, shoal.db by default).
    Interrupt any time with Ctrl-C; the same command again resumes the job.
    """


def _run(coro: Coroutine[Any, Any, int]) -> None:
    console = Console(stderr=True)
    try:
        code = run_loop(coro)
    except CliFailure as exc:
        console.print(f"shoal: {exc}", markup=False, highlight=False)
        code = exc.code
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        if os.environ.get("SHOAL_DEBUG"):
            raise
        console.print(
            f"shoal: internal error: {type(exc).__name__}: {exc} (set SHOAL_DEBUG=1 for details)",
            markup=False,
            highlight=False,
        )
        code = EXIT_INTERNAL
    sys.exit(code)


def _check_output(params: dict[str, Any]) -> None:
    """Validate ``-o`` before anything is touched; a WARC output needs the bodies."""
    from shoal.core.errors import ConfigError
    from shoal.export.writers import format_for

    output = params["output"]
    if output:
        try:
            kind = format_for(output)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="-o/--output") from None
        if kind == "warc":
            params["save_bodies"] = True


def _require_store_file(location: str) -> None:
    """Commands that only read must not create an empty store by accident."""
    if "://" not in location and not os.path.exists(location):
        Console(stderr=True).print(f"shoal: store error: {location} does not exist", markup=False)
        sys.exit(3)


def _job_name_for(input_path: str) -> str:
    if input_path == "-":
        return "stdin"
    return job_name(Path(input_path).name.split(".")[0])


@cli.command(epilog=EXIT_CODES)
@click.argument("input_path", metavar="[INPUT]", required=False, default=None)
@run_options(per_host=8, delay=0.0)
@click.option(
    "--strict",
    envvar="SHOAL_STRICT",
    is_flag=True,
    help="Invalid input lines are fatal (exit 4) instead of reported and skipped.",
)
def fetch(input_path: str | None, **params: Any) -> None:
    """Fetch every URL (or API request) in INPUT, recording each outcome.

    INPUT is a file, or - for standard input: one URL per line (blank lines
    and # comments are skipped), or JSON lines such as
    {"url": "...", "method": "POST", "headers": {...}, "body": "..."}.
    Invalid lines are reported with their line numbers and skipped.

    Running the same command again resumes the job: nothing finished is
    fetched again.
    """
    if input_path is None:
        if sys.stdin.isatty():
            raise click.UsageError("give an INPUT file, or pipe URLs on standard input (-)")
        input_path = "-"
    if input_path != "-" and not os.path.isfile(input_path):
        raise click.BadParameter(f"{input_path}: no such file", param_hint="INPUT")
    _check_output(params)
    config = build_config(params, follow_links=False)
    job = params["job"] or _job_name_for(input_path)
    strict = bool(params["strict"])
    record = {**config.as_record(), "input": input_path, "strict": strict}

    try:
        stream = sys.stdin.buffer if input_path == "-" else open(input_path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise click.BadParameter(f"{input_path}: {exc.strerror}", param_hint="INPUT") from None

    async def admit(store: Store, info: JobInfo, context: AdmitContext) -> Any:
        with stream:
            return await admit_lines(store, info, stream, context, strict=strict, now=time.time)

    request = JobRequest(
        store=params["store"],
        job=job,
        mode="fetch",
        config=config,
        admit=admit,
        output=params["output"],
        quiet=params["quiet"],
        label=f"fetch {job}",
        config_record=record,
        source="<stdin>" if input_path == "-" else input_path,
    )
    _run(run_job(request, Console(stderr=True)))


@cli.command()
@read_store_option
@click.option("--job", envvar="SHOAL_JOB", required=True, metavar="NAME", help="Job to export.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    default=None,
    help="Output format; default from the file suffix (.jsonl .csv .parquet .warc.gz).",
)
@click.option("-o", "--output", required=True, metavar="FILE", help="File to write, or - .")
def export(store: str, job: str, fmt: str | None, output: str) -> None:
    """Write a job's results to JSONL, CSV, Parquet or WARC (a consistent snapshot).

    WARC needs the bodies: run the job with --save-bodies (or with -o x.warc.gz).
    """
    _require_store_file(store)
    _run(_export(store, job, fmt, output))


async def _export(location: str, job_name: str, fmt: str | None, output: str) -> int:
    from shoal.core.errors import ConfigError
    from shoal.export.writers import format_for, open_writer

    store = await open_ready_store(location)
    try:
        job = await store.get_job(job_name)
        if job is None:
            raise CliFailure(_no_such_job(job_name, await store.list_jobs()), EXIT_USAGE)
        try:
            kind = format_for(output, fmt)
            writer = open_writer(output, kind)
        except ConfigError as exc:
            raise CliFailure(str(exc), EXIT_USAGE) from None
        rows = 0
        async for batch in store.iter_results(job.id, with_bodies=kind == "warc"):
            await asyncio.to_thread(writer.write, batch)
            rows += len(batch)
        try:
            await asyncio.to_thread(writer.close)
        except ConfigError as exc:
            raise CliFailure(str(exc), EXIT_USAGE) from None
        if output != "-":
            Console(stderr=True).print(f"exported {rows:,} results of job {job.name} to {output}")
        return 0
    finally:
        await store.close()


def _no_such_job(name: str, jobs: list[JobInfo]) -> str:
    known = ", ".join(j.name for j in jobs[:10]) or "none"
    return f"no job named {name!r} in the store (jobs: {known})"


@cli.command()
@read_store_option
@click.option(
    "--job",
    envvar="SHOAL_JOB",
    default=None,
    metavar="NAME",
    help="One job's summary; default: every job, one line each.",
)
def stats(store: str, job: str | None) -> None:
    """Summarize the jobs in a store: progress, outcomes, latency."""
    _require_store_file(store)
    _run(_stats(store, job))


async def _stats(location: str, job_name: str | None) -> int:
    from rich.table import Table

    from shoal.cli.progress import render_summary

    console = Console()
    store = await open_ready_store(location)
    try:
        if job_name is not None:
            job = await store.get_job(job_name)
            if job is None:
                raise CliFailure(_no_such_job(job_name, await store.list_jobs()), EXIT_USAGE)
            console.print(render_summary(await store.summary(job.id), job=job.name, this_run=None))
            return 0
        jobs = await store.list_jobs()
        if not jobs:
            console.print(f"no jobs in {store.location}")
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


def main() -> None:
    try:
        cli(prog_name="shoal")
    except KeyboardInterrupt:
        sys.exit(130)
