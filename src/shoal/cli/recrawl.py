"""``shoal recrawl JOB``: ask a finished job's URLs again whether they changed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import click
from rich.console import Console

from shoal.cli.exits import EXIT_CODES, EXIT_USAGE, CliFailure, run_command
from shoal.cli.jobrun import JobRequest, run_job
from shoal.cli.observe import Observe, observe_options
from shoal.cli.options import csv_escape_option, store_option
from shoal.cli.params import DurationParam
from shoal.cli.requestopts import build_extra_headers, header_options
from shoal.cli.results import stored_spec
from shoal.core.errors import ConfigError
from shoal.core.revisit import MAX_KEEP_HISTORY, Recrawl
from shoal.core.sendheaders import ExtraHeaders
from shoal.export.writers import SUFFIXES_TEXT

__all__ = ["recrawl"]


@click.command(epilog=EXIT_CODES)
@click.argument("job")
@store_option
@click.option(
    "--revisit-after",
    envvar="SHOAL_REVISIT_AFTER",
    type=DurationParam(),
    default=None,
    help="Only URLs fetched longer ago than this (30m, 12h, 1d, 2w); default: all.",
)
@click.option(
    "--keep-history",
    envvar="SHOAL_KEEP_HISTORY",
    type=click.IntRange(0, MAX_KEEP_HISTORY),
    default=None,
    help="Earlier results kept per URL when a page changes (default: the job's setting).",
)
@click.option(
    "-o",
    "--output",
    envvar="SHOAL_OUTPUT",
    metavar="FILE",
    help="Write the job's whole result set (each URL's current result) to FILE; the suffix "
    f"chooses the format: {SUFFIXES_TEXT}.",
)
@csv_escape_option
@click.option("-q", "--quiet", is_flag=True, help="No progress display or summary.")
@observe_options
@header_options
def recrawl(
    job: str,
    store: str,
    revisit_after: float | None,
    keep_history: int | None,
    output: str | None,
    csv_escape: bool,
    quiet: bool,
    **observing: Any,
) -> None:
    """Fetch JOB's finished URLs again, asking each server whether the page changed.

    Each URL goes out with its result's ETag (If-None-Match) and Last-Modified
    (If-Modified-Since). A 304 keeps the result as it was, body and fields
    included; a changed page replaces it, and the result it replaced is kept in
    the job's history (the last --keep-history per URL). Links of changed pages
    are followed within the job's scope, so new pages join the job. The summary
    counts the pages unchanged, changed, new and gone (fine before, failing now).

    The same as `shoal crawl ... --recrawl` (or `shoal fetch ... --recrawl`)
    with the job's own settings. A job started with -H, --header-for, --user or
    --bearer stored their names only: give the same ones again.
    """
    from shoal.cli import _check_output_path
    from shoal.engine.fetch.pool import prefork

    observe = Observe.of(observing)
    if output:
        _check_output_path(output)
    extra_headers = build_extra_headers(observing)
    observe.export_profile()
    # Forked now, before the event loop (see shoal.engine.fetch.pool).
    prefork(None)
    plan = _RecrawlAsked(
        location=store,
        name=job,
        recrawl=Recrawl(older_than=revisit_after),
        keep_history=keep_history,
        output=output,
        csv_escape=csv_escape,
        quiet=quiet,
        extra_headers=extra_headers,
    )
    run_command(_recrawl(plan), observe)


@dataclass(frozen=True, kw_only=True, slots=True)
class _RecrawlAsked:
    """What ``shoal recrawl`` was asked, until the job's stored settings are read."""

    location: str
    name: str
    recrawl: Recrawl
    keep_history: int | None
    output: str | None
    csv_escape: bool
    quiet: bool
    extra_headers: ExtraHeaders


async def _recrawl(plan: _RecrawlAsked) -> int:
    spec = await stored_spec(plan.location, plan.name)
    try:
        if plan.keep_history is not None:
            spec = replace(spec, keep_history=plan.keep_history)
        # The job's headers are stored by name only: this command is given their values.
        spec = replace(spec, extra_headers=spec.extra_headers.with_values_of(plan.extra_headers))
    except ConfigError as exc:
        raise CliFailure(f"job {plan.name!r}: {exc}", EXIT_USAGE) from None
    request = JobRequest(
        store=plan.location,
        spec=spec,
        name=plan.name,
        command="recrawl",
        output=plan.output,
        csv_escape=plan.csv_escape,
        quiet=plan.quiet,
        recrawl=plan.recrawl,
    )
    return await run_job(request, Console(stderr=True))
