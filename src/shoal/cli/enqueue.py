"""``shoal enqueue``: publish a URL list as request messages for queue-fed workers."""

from __future__ import annotations

import os
import sys
from typing import BinaryIO

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from shoal.cli.exits import EXIT_CODES, EXIT_OK, EXIT_STORE, EXIT_USAGE, CliFailure, run_command
from shoal.core.errors import ConfigError

__all__ = ["enqueue"]


async def _enqueue(
    url: str,
    stream: BinaryIO,
    total: int | None,
    source: str,
    job: str | None,
    requests: str,
    quiet: bool,
) -> int:
    from shoal.queue import BrokerUnavailable, Topology
    from shoal.queue import enqueue as publish_all
    from shoal.queue._amqp import check_broker_url

    console = Console(stderr=True)
    try:
        topology = Topology(requests=requests)
        check_broker_url(url)
    except ConfigError as exc:
        raise CliFailure(str(exc), EXIT_USAGE) from None
    with (
        stream,
        Progress(
            TextColumn("enqueue"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            disable=quiet or not console.is_terminal,
            transient=True,
        ) as progress,
    ):
        bar = progress.add_task("enqueue", total=total)
        try:
            report = await publish_all(
                url,
                stream,
                topology=topology,
                job=job,
                on_published=lambda n: progress.advance(bar, n),
            )
        except ConfigError as exc:
            raise CliFailure(str(exc), EXIT_USAGE) from None
        except BrokerUnavailable as exc:
            raise CliFailure(f"broker error: {exc}", EXIT_STORE) from None
    for error in report.errors:
        console.print(f"shoal: {source}:{error.line_no}: {error.reason}", markup=False)
    if report.invalid:
        console.print(f"shoal: {report.invalid:,} invalid input line(s) skipped", markup=False)
    if not quiet:
        console.print(
            f"{report.published:,} request messages published to {topology.requests}",
            markup=False,
            highlight=False,
        )
    if not report.published:
        raise CliFailure("no valid URLs in the input; nothing published", EXIT_USAGE)
    return EXIT_OK


@click.command(epilog=EXIT_CODES)
@click.argument("url", metavar="AMQP_URL")
@click.argument("input_path", metavar="INPUT")
@click.option(
    "--job", envvar="SHOAL_JOB", default=None, metavar="NAME", help="Job of each request."
)
@click.option(
    "--requests",
    "requests_queue",
    envvar="SHOAL_REQUESTS",
    default="shoal.requests",
    show_default=True,
    help="The queue to publish to.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def enqueue(url: str, input_path: str, job: str | None, requests_queue: str, quiet: bool) -> None:
    """Publish every URL (or JSON request line) of INPUT as a request message.

    INPUT is read as `shoal fetch` reads it (- for standard input); invalid lines
    are reported and skipped. Each message is persistent and confirmed by the
    broker before this command exits 0. Run `shoal worker --queue AMQP_URL` to
    fetch them.
    """
    if input_path != "-" and not os.path.isfile(input_path):
        raise click.BadParameter(f"{input_path}: no such file", param_hint="INPUT")
    total: int | None = None
    try:
        if input_path == "-":
            stream: BinaryIO = sys.stdin.buffer
        else:
            with open(input_path, "rb") as counting:
                total = sum(1 for _ in counting)  # lines: the progress bar's length
            stream = open(input_path, "rb")  # noqa: SIM115 - closed by _enqueue
    except OSError as exc:
        raise click.BadParameter(f"{input_path}: {exc.strerror}", param_hint="INPUT") from None
    source = "<stdin>" if input_path == "-" else input_path
    run_command(_enqueue(url, stream, total, source, job, requests_queue, quiet))
