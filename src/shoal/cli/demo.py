"""``shoal demo``: the whole product offline in one command.

Starts the bundled testweb site on loopback in a child process, fetches a
mixed URL list from it (pages on several hosts, redirects, flaky and slow
endpoints, missing pages) into a fresh SQLite store with the live display,
prints the summary and stops the site.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import click
from rich.console import Console

from shoal.cli.admit import AdmitReport, admit_held
from shoal.cli.exits import run_command
from shoal.cli.jobrun import JobRequest, run_job
from shoal.core.config import CrawlConfig, Limits, Politeness, RetryPolicy, Timeouts
from shoal.core.inputs import parse_line
from shoal.core.jobspec import JobSpec
from shoal.engine.run.runner import AdmitContext
from shoal.export.writers import SUFFIXES_TEXT

__all__ = ["demo"]


@contextlib.contextmanager
def _testweb(hosts: int, pages: int) -> Iterator[list[str]]:
    argv = [
        sys.executable, "-m", "shoal.testweb",
        "--hosts", str(hosts), "--pages", str(pages), "--latency-ms", "20", "--no-log",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise click.ClickException("the testweb site did not start")
        yield list(json.loads(line)["base_urls"])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def demo_urls(base_urls: list[str], pages: int) -> list[str]:
    urls = [f"{base}/page/{n}" for base in base_urls for n in range(pages)]
    first = base_urls[0]
    urls += [
        f"{first}/redirect/3",
        f"{first}/status/404",
        f"{first}/status/410",
        f"{first}/delay/800",
        f"{first}/flaky/demo-a?fail=2&code=503",
        f"{first}/flaky/demo-b?fail=1&code=429&retry_after=1",
        f"{first}/bytes/50000",
    ]
    return urls


@click.command()
@click.option(
    "--hosts",
    type=click.IntRange(1, 50),
    default=4,
    show_default=True,
    help="Hosts of the demo site (127.0.0.2, .3, ...).",
)
@click.option(
    "--pages",
    type=click.IntRange(1, 100_000),
    default=1500,
    show_default=True,
    help="Pages fetched from each host.",
)
@click.option(
    "--store",
    default="shoal-demo.db",
    show_default=True,
    help="SQLite store to create (replaced if it exists).",
)
@click.option(
    "-o",
    "--output",
    default="shoal-demo.jsonl",
    show_default=True,
    help=f"Results file written as results land; the suffix chooses the format: {SUFFIXES_TEXT}.",
)
def demo(hosts: int, pages: int, store: str, output: str) -> None:
    """Fetch the bundled offline test site with live progress, then print the summary."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(store + suffix)
    console = Console(stderr=True)
    config = CrawlConfig(
        limits=Limits(concurrency=64),
        timeouts=Timeouts(total=20, connect=5, read=10),
        politeness=Politeness(per_host=4),
        retry=RetryPolicy(retries=3, backoff_base=0.2),
    )
    with _testweb(hosts, pages) as base_urls:
        console.print(
            f"[bold]shoal demo[/]: testweb serving {hosts} hosts on loopback "
            f"({', '.join(base_urls[:3])}{', ...' if hosts > 3 else ''})"
        )
        urls = demo_urls(base_urls, pages)

        requests = [r for n, url in enumerate(urls, 1) if (r := parse_line(url, n))]

        async def admit(context: AdmitContext) -> AdmitReport:
            import time

            return await admit_held(requests, context, now=time.time)

        request = JobRequest(
            store=store,
            spec=JobSpec.fetch(input="demo", config=config),
            name="demo",
            command="fetch",
            admit=admit,
            output=output,
        )
        _run_demo(request, console, store)


def _run_demo(request: JobRequest, console: Console, store: str) -> None:
    console.print(f"store: {store} · results: {request.output}")
    try:
        run_command(run_job(request, console))
    except SystemExit as exit_:
        if exit_.code == 0:
            console.print(
                f"\nnext: [bold]shoal stats --store {store}[/] · "
                f"[bold]shoal export --store {store} --job demo -o demo.csv[/]"
            )
        raise
