"""The ``shoal`` command."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Coroutine
from typing import Any, BinaryIO

import click
from rich.console import Console

from shoal.cli.jobrun import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_OUTPUT,
    EXIT_STORE,
    EXIT_USAGE,
    AdmitReport,
    CliFailure,
    JobRequest,
    admit_held,
    admit_lines,
    open_ready_store,
    read_all_lines,
    report_input,
    run_job,
)
from shoal.cli.observe import Observe, debugged
from shoal.cli.options import (
    EXIT_CODES,
    build_config,
    check_toml_values,
    csv_escape_option,
    load_toml_defaults,
    read_store_option,
    run_options,
)
from shoal.core.errors import OutputError, StoreError
from shoal.core.inputs import SNIFF_BYTES, input_digest, sniff_binary
from shoal.core.jobspec import JobSpec
from shoal.core.model import JobInfo, NewRequest
from shoal.core.secrets import HeldSecrets
from shoal.engine.fetchpool import prefork
from shoal.engine.profiling import profiled
from shoal.engine.resources import run_loop
from shoal.engine.run import AdmitContext
from shoal.export.writers import FORMATS

__all__ = ["cli", "main"]

_COMMANDS_WITH_CONFIG = ["fetch", "crawl", "export", "stats"]


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        known: dict[str, dict[str, str]] = {}
        commands: dict[str, click.Command] = {}
        for name in _COMMANDS_WITH_CONFIG:
            command = cli.get_command(ctx, name)
            if command is not None:
                known[name] = _config_keys(command)
                commands[name] = command
        defaults = load_toml_defaults(value, _COMMANDS_WITH_CONFIG, known=known)
        for name, values in defaults.items():
            if name in commands:
                defaults[name] = check_toml_values(value, commands[name], values)
        ctx.default_map = defaults
    return value


def _config_keys(command: click.Command) -> dict[str, str]:
    """TOML keys a command takes: parameter names and long option names, ``-`` as ``_``."""
    keys: dict[str, str] = {}
    for param in command.params:
        if param.name is None:
            continue
        keys[param.name] = param.name
        for flag in param.opts:
            if flag.startswith("--"):
                keys[flag[2:].replace("-", "_")] = param.name
    return keys


class _LazyGroup(click.Group):
    """Commands that need heavy imports (the test site, the demo) load on first use."""

    lazy = {
        "crawl": "shoal.cli.crawl:crawl",
        "demo": "shoal.cli.demo:demo",
        "testweb": "shoal.testweb.cli:testweb",
        "worker": "shoal.cli.worker:worker",
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
    help="TOML file of option defaults (top-level keys, [fetch]/[crawl] tables, and an "
    "[extract] table of extraction rules).",
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


def _say(message: str) -> None:
    """One line on standard error, however long and whatever the terminal width."""
    text = " ".join(message.splitlines())
    Console(stderr=True).print(f"shoal: {text}", markup=False, highlight=False, soft_wrap=True)


def _configure_logging() -> None:
    """What a person sees of the library's logs: shoal's warnings, one line each; nothing
    from the libraries beneath (asyncpg's pool logs tracebacks while a database restarts,
    which shoal already reports and rides out). SHOAL_DEBUG=1 shows everything."""
    if os.environ.get("SHOAL_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("shoal: %(message)s"))
    ours = logging.getLogger("shoal")
    ours.addHandler(handler)
    ours.setLevel(logging.WARNING)
    ours.propagate = False
    logging.getLogger().addHandler(logging.NullHandler())


def _internal_error(exc: BaseException) -> str:
    """The message for a bug: the first real exception, not the TaskGroup that carried it."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"internal error: {type(exc).__name__}: {exc} (set SHOAL_DEBUG=1 for details)"


def _run_job(request: JobRequest, observe: Observe) -> None:
    """Run a fetch or crawl job to its exit code. Its fetch processes are forked first,
    while this process has no thread or event loop yet (see ``engine.fetchpool``)."""
    observe.export_profile()
    prefork(request.spec.config.limits.processes)
    _run(run_job(request, Console(stderr=True)), observe)


def _run(coro: Coroutine[Any, Any, int], observe: Observe | None = None) -> None:
    _configure_logging()
    observe = observe or Observe()
    try:
        with profiled(observe.profile):
            code = run_loop(debugged(coro, observe) if observe.debug else coro)
    except CliFailure as exc:
        _say(str(exc))
        code = exc.code
    except KeyboardInterrupt:
        code = 130
    except StoreError as exc:  # raised outside a job's run (counts, summary, export)
        _say(f"store error: {exc}")
        code = EXIT_STORE
    except OutputError as exc:
        _say(f"output error: {exc}")
        code = EXIT_OUTPUT
    except Exception as exc:
        if os.environ.get("SHOAL_DEBUG") or observe.debug:
            raise
        _say(_internal_error(exc))
        code = EXIT_INTERNAL
    sys.exit(code)


def _check_output(params: dict[str, Any]) -> None:
    """Validate ``-o`` before anything is touched; a WARC output needs the bodies."""
    from shoal.core.errors import ConfigError
    from shoal.export.writers import format_for

    output = params["output"]
    if output:
        _check_output_path(output)
        try:
            kind = format_for(output, params.get("output_format"))
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="-o/--output") from None
        if kind == "warc":
            params["save_bodies"] = True


def _require_store_file(location: str) -> None:
    """Commands that only read must not create an empty store by accident."""
    if "://" not in location and not os.path.exists(location):
        raise CliFailure(f"store error: {location} does not exist", EXIT_STORE)


def _check_output_path(output: str) -> None:
    """Refuse an output that cannot be a file before the store or the network is touched."""
    if output == "-":
        return
    if os.path.isdir(output):
        raise click.BadParameter(f"{output} is a directory", param_hint="-o/--output")
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        problem = "is not a directory" if os.path.exists(parent) else "does not exist"
        problem = f"cannot write {output}: {parent} {problem}"
        raise click.BadParameter(problem, param_hint="-o/--output")


def _refuse_binary(stream: BinaryIO, source: str) -> None:
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
    observe = Observe.of(params)
    if input_path is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise click.UsageError("give an INPUT file, or pipe URLs on standard input (-)")
        input_path = "-"
    if input_path == "-" and sys.stdin is None:
        raise click.BadParameter("standard input is closed", param_hint="INPUT")
    if input_path != "-" and os.path.isdir(input_path):
        raise click.BadParameter(f"{input_path} is a directory", param_hint="INPUT")
    if input_path != "-" and not os.path.exists(input_path):
        raise click.BadParameter(f"{input_path}: no such file", param_hint="INPUT")
    _check_output(params)
    config = build_config(params, follow_links=False)
    strict = bool(params["strict"])
    source = "<stdin>" if input_path == "-" else input_path
    try:
        stream = sys.stdin.buffer if input_path == "-" else open(input_path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise click.BadParameter(f"{input_path}: {exc.strerror}", param_hint="INPUT") from None
    _refuse_binary(stream, source)
    digest = None if input_path == "-" else _digest_of(input_path)
    spec = JobSpec.fetch(input=input_path, input_digest=digest, config=config, strict=strict)

    secrets = HeldSecrets()
    held: list[NewRequest] | None = None
    if strict:
        # Every line must be valid before the store is touched: nothing is created otherwise.
        held = [secrets.hold(r) for r in _all_valid_lines(stream, source)]

    async def admit(context: AdmitContext) -> AdmitReport:
        if held is not None:
            return await admit_held(held, context, now=time.time)
        with stream:
            return await admit_lines(stream, context, now=time.time, secrets=secrets)

    request = JobRequest(
        store=params["store"],
        spec=spec,
        name=params["job"],
        command="fetch",
        output=params["output"],
        output_format=params["output_format"],
        csv_escape=params["csv_escape"],
        held=secrets,
        quiet=params["quiet"],
        admit=admit,
        source=source,
        fresh=params["fresh"],
        refetch=params["refetch"],
    )
    _run_job(request, observe)


def _digest_of(path: str) -> str | None:
    """The input's content digest (what tells one list from another under one name); None
    for what is not a regular file (a FIFO can be read only once)."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as stream:
            return input_digest(iter(lambda: stream.read(1 << 20), b""))
    except OSError as exc:
        raise click.BadParameter(f"{path}: {exc.strerror}", param_hint="INPUT") from None


def _all_valid_lines(stream: BinaryIO, source: str) -> list[NewRequest]:
    """``--strict``: every line parsed; any invalid one ends the command (exit 4)."""
    from rich.console import Console

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


@cli.command()
@read_store_option
@click.option("--job", envvar="SHOAL_JOB", required=True, metavar="NAME", help="Job to export.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    default=None,
    help="Output format; default from the file suffix (.jsonl .json .csv .parquet .warc.gz).",
)
@click.option("-o", "--output", required=True, metavar="FILE", help="File to write, or - .")
@csv_escape_option
def export(store: str, job: str, fmt: str | None, output: str, csv_escape: bool) -> None:
    """Write a job's results to JSONL, CSV, Parquet or WARC (a consistent snapshot).

    WARC needs the bodies: run the job with --save-bodies (or with -o x.warc.gz).
    """
    _check_output_path(output)
    _require_store_file(store)
    _run(_export(store, job, fmt, output, csv_escape=csv_escape))


async def _export(
    location: str, job_name: str, fmt: str | None, output: str, *, csv_escape: bool = True
) -> int:
    from shoal.core.errors import ConfigError, OutputError
    from shoal.export.records import rules_of_job
    from shoal.export.writers import format_for, open_writer

    store = await open_ready_store(location)
    try:
        job = await store.get_job(job_name)
        if job is None:
            raise CliFailure(_no_such_job(job_name, await store.list_jobs()), EXIT_USAGE)
        try:
            kind = format_for(output, fmt)
            writer = open_writer(
                output, kind, extract=rules_of_job(job.config), escape_formulas=csv_escape
            )
        except OutputError as exc:
            raise CliFailure(f"output error: {exc}", EXIT_OUTPUT) from None
        except ConfigError as exc:
            raise CliFailure(str(exc), EXIT_USAGE) from None
        rows = 0
        try:
            async for batch in store.iter_results(job.id, with_bodies=kind == "warc"):
                await asyncio.to_thread(writer.write, batch)
                rows += len(batch)
            await asyncio.to_thread(writer.close)
        except OutputError as exc:
            raise CliFailure(f"output error: {exc}", EXIT_OUTPUT) from None
        except ConfigError as exc:
            raise CliFailure(str(exc), EXIT_USAGE) from None
        except BaseException:
            await asyncio.to_thread(writer.abort)
            raise
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


# click ≥ 8.2 raises this for a bare "shoal" (older versions print the help and exit).
_NoArgsIsHelp: tuple[type[click.UsageError], ...] = tuple(
    getattr(click.exceptions, name)
    for name in ("NoArgsIsHelpError",)
    if hasattr(click.exceptions, name)
)


def main() -> None:
    """The ``shoal`` command: every failure ends in one line on stderr and an exit code."""
    try:
        result = cli.main(prog_name="shoal", standalone_mode=False)
    except CliFailure as exc:
        _say(str(exc))
        sys.exit(exc.code)
    except _NoArgsIsHelp as exc:  # bare "shoal": the help text, as click prints it
        exc.show()
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _say(exc.format_message() + hint)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _say(exc.format_message())
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt, EOFError):
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("SHOAL_DEBUG"):
            raise
        _say(_internal_error(exc))
        sys.exit(EXIT_INTERNAL)
    sys.exit(result if isinstance(result, int) else 0)
