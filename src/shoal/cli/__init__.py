"""The ``shoal`` command."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click
from rich.console import Console

from shoal.cli.admit import (
    AdmitReport,
    admit_held,
    admit_lines,
    all_valid_lines,
    digest_of,
    refuse_binary,
)
from shoal.cli.exits import (
    EXIT_CODES,
    EXIT_INTERNAL,
    CliFailure,
    closed_pipe,
    exit_closed_pipe,
    internal_error,
    require_store_file,
    run_command,
    say,
)
from shoal.cli.jobrun import JobRequest, run_job
from shoal.cli.observe import Observe
from shoal.cli.options import (
    build_config,
    build_recrawl,
    csv_escape_option,
    read_store_option,
    run_options,
)
from shoal.cli.requestopts import build_cookies, build_extra_headers
from shoal.cli.tomlfile import check_toml_values, load_toml_defaults
from shoal.core.jobspec import JobSpec
from shoal.core.model import NewRequest
from shoal.core.secrets import HeldSecrets
from shoal.engine.fetch.pool import prefork
from shoal.engine.fetch.transport import client_for
from shoal.engine.run.runner import AdmitContext
from shoal.export.writers import EXPORT_FORMATS, SUFFIXES_TEXT

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


def _load_command_config(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """``--config`` given after the subcommand: its defaults for this command."""
    if value and ctx.parent is not None and ctx.info_name is not None:
        _load_config(ctx.parent, param, value)
        ctx.default_map = (ctx.parent.default_map or {}).get(ctx.info_name)
    return value


def _with_config_option(command: click.Command) -> click.Command:
    """Let ``--config`` come after the subcommand too (``shoal fetch --config f.toml``)."""
    if not any(p.name == "config" for p in command.params):
        command.params.append(
            click.Option(
                ["--config"],
                metavar="FILE",
                is_eager=True,
                expose_value=False,
                callback=_load_command_config,
                help="TOML file of option defaults (as 'shoal --config').",
            )
        )
    return command


def _config_keys(command: click.Command) -> dict[str, str]:
    """TOML keys a command takes: parameter names and long option names, ``-`` as ``_``."""
    keys: dict[str, str] = {}
    for param in command.params:
        if param.name is None or param.name == "config":
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
        "enqueue": "shoal.cli.enqueue:enqueue",
        "jobs": "shoal.cli.jobs:jobs",
        "recrawl": "shoal.cli.recrawl:recrawl",
        "serve": "shoal.service.command:serve",
        "testweb": "shoal.testweb.cli:testweb",
        "worker": "shoal.cli.worker:worker",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """An unknown command gets a did-you-mean among every command, lazy ones too."""
        name = args[0] if args else ""
        if args and self.get_command(ctx, name) is None and not name.startswith("-"):
            import difflib

            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            command = super().get_command(ctx, cmd_name)
        else:
            import importlib

            module, _, attr = target.partition(":")
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command)
        if command is not None and cmd_name in _COMMANDS_WITH_CONFIG:
            _with_config_option(command)
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


def _run_job(request: JobRequest, observe: Observe) -> None:
    """Run a fetch or crawl job to its exit code. Its fetch processes are forked first,
    while this process has no thread or event loop yet (see ``engine.fetch.pool``)."""
    observe.export_profile()
    prefork(request.spec.config.limits.processes, http=client_for(request.spec.config))
    run_command(run_job(request, Console(stderr=True)), observe)


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
    recrawl = build_recrawl(params)
    config = build_config(params, follow_links=False)
    extra_headers = build_extra_headers(params)
    cookies = build_cookies(params)
    strict = bool(params["strict"])
    source = "<stdin>" if input_path == "-" else input_path
    try:
        stream = sys.stdin.buffer if input_path == "-" else open(input_path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise click.BadParameter(f"{input_path}: {exc.strerror}", param_hint="INPUT") from None
    refuse_binary(stream, source)
    digest = None if input_path == "-" else digest_of(input_path)
    spec = JobSpec.fetch(
        input=input_path,
        input_digest=digest,
        config=config,
        strict=strict,
        extra_headers=extra_headers,
        cookies=cookies is not None,
        keep_history=params["keep_history"],
    )

    secrets = HeldSecrets()
    held: list[NewRequest] | None = None
    if strict:
        # Every line must be valid before the store is touched: nothing is created otherwise.
        held = [secrets.hold(r) for r in all_valid_lines(stream, source)]

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
        recrawl=recrawl,
        emit=params["emit"],
        cookies=cookies,
        save_cookies=params["save_cookies"],
    )
    _run_job(request, observe)


@cli.command(epilog=EXIT_CODES)
@read_store_option
@click.option("--job", envvar="SHOAL_JOB", required=True, metavar="NAME", help="Job to export.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(EXPORT_FORMATS)),
    default=None,
    help=f"Output format; default from the file suffix ({SUFFIXES_TEXT}). files: each saved "
    "body as a file in the directory -o names, with an index.jsonl.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="FILE|DIR",
    help=f"File to write, its suffix choosing the format ({SUFFIXES_TEXT}), - for JSONL on "
    "standard output, or the directory for --format files.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    metavar="2xx|404,...",
    help="Only results with these HTTP statuses: classes (2xx, 4xx) or codes (404); repeat "
    "or separate with commas.",
)
@click.option(
    "--error-kind",
    "error_kinds",
    multiple=True,
    metavar="KIND",
    help="Only results with this error kind (see docs/errors.md); repeat for several.",
)
@click.option(
    "--failed", is_flag=True, help="Only failures: an error kind, or an HTTP status ≥ 400."
)
@click.option(
    "--with-text",
    is_flag=True,
    help="JSONL: add text, each saved body decoded with its recorded encoding.",
)
@csv_escape_option
def export(
    store: str,
    job: str,
    fmt: str | None,
    output: str,
    statuses: tuple[str, ...],
    error_kinds: tuple[str, ...],
    failed: bool,
    with_text: bool,
    csv_escape: bool,
) -> None:
    """Write a job's results (a consistent snapshot) as JSONL, CSV, Parquet, WARC, or files.

    WARC, files and --with-text need the bodies: run the job with --save-bodies
    (or with -o x.warc.gz). Filters are combined: --status 4xx --error-kind too_large
    selects the 4xx responses cut at the size limit.
    """
    from shoal.cli.results import export_results, result_filter

    if fmt != "files":
        _check_output_path(output)
    require_store_file(store)
    where = result_filter(statuses, error_kinds, failed=failed)
    coro = export_results(
        store,
        job,
        fmt=fmt,
        output=output,
        where=where,
        with_text=with_text,
        csv_escape=csv_escape,
    )
    run_command(coro)


@cli.command(epilog=EXIT_CODES)
@read_store_option
@click.option(
    "--job",
    envvar="SHOAL_JOB",
    default=None,
    metavar="NAME",
    help="One job's summary; default: every job, one line each.",
)
@click.option(
    "--failed",
    is_flag=True,
    help="List every URL of the job (--job) with an error kind or an HTTP status ≥ 400: "
    "status, error kind, URL, error.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
def stats(store: str, job: str | None, failed: bool, as_json: bool) -> None:
    """Summarize the jobs in a store: progress, outcomes, latency; or list a job's failures."""
    from shoal.cli.results import show_failed, show_stats

    if failed and job is None:
        raise click.UsageError("--failed lists one job's failures: give --job NAME")
    require_store_file(store)
    if failed and job is not None:
        run_command(show_failed(store, job, as_json=as_json))
    else:
        run_command(show_stats(store, job, as_json=as_json))


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
        say(str(exc))
        sys.exit(exc.code)
    except _NoArgsIsHelp as exc:  # bare "shoal": the help text, as click prints it
        exc.show()
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        say(exc.format_message() + hint)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        say(exc.format_message())
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt, EOFError):
        sys.exit(130)
    except Exception as exc:
        if closed_pipe(exc):
            exit_closed_pipe()
        if os.environ.get("SHOAL_DEBUG"):
            raise
        say(internal_error(exc))
        sys.exit(EXIT_INTERNAL)
    sys.exit(result if isinstance(result, int) else 0)
