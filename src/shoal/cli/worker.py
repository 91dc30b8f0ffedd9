"""``shoal worker``: join a job another command started, on this machine or any other.

The job's recorded settings (what ``shoal fetch``/``shoal crawl`` stored when
they created it) tell the worker how to fetch: the same timeouts, retries,
politeness, scope and extraction. Nothing is admitted; the worker leases what
is due, follows links if the job is a crawl, and stops when the job has no
open rows left — the same as the command that started the job.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

import click
from rich.console import Console

from shoal.cli.jobrun import EXIT_USAGE, CliFailure, JobRequest, open_ready_store, run_job
from shoal.cli.observe import Observe, observe_options
from shoal.cli.options import EXIT_CODES
from shoal.core.config import CrawlConfig, Limits
from shoal.core.errors import ConfigError
from shoal.core.jobspec import JobSpec

__all__ = ["worker"]


async def _request(
    location: str, name: str, limits: dict[str, int | None], quiet: bool
) -> JobRequest:
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
        spec = JobSpec.from_record(job.mode, job.config)
        spec = replace(spec, config=_with_limits(spec.config, limits))
    except ConfigError as exc:
        message = f"job {name!r} has settings this shoal cannot use: {exc}"
        raise CliFailure(message, EXIT_USAGE) from None
    return JobRequest(
        store=location, spec=spec, name=name, command="worker", quiet=quiet, join=True
    )


def _with_limits(config: CrawlConfig, given: dict[str, int | None]) -> CrawlConfig:
    """The job's config with the limits given to this worker (None: the job's own)."""
    changes = {name: value for name, value in given.items() if value is not None}
    if not changes:
        return config
    limits: Limits = replace(config.limits, **changes)
    return replace(config, limits=limits)


async def _work(location: str, name: str, limits: dict[str, int | None], quiet: bool) -> int:
    request = await _request(location, name, limits, quiet)
    return await run_job(request, Console(stderr=True))


@click.command(epilog=EXIT_CODES)
@click.option(
    "--store",
    envvar="SHOAL_STORE",
    required=True,
    metavar="URL|PATH",
    help="The job's store: postgresql://user@host/db for workers on several machines.",
)
@click.option("--job", envvar="SHOAL_JOB", required=True, metavar="NAME", help="The job to join.")
@click.option(
    "--concurrency",
    envvar="SHOAL_CONCURRENCY",
    type=click.IntRange(1),
    default=None,
    help="Requests in flight in this worker (default: the job's setting).",
)
@click.option(
    "--processes",
    envvar="SHOAL_PROCESSES",
    type=click.IntRange(0, 64),
    default=None,
    help="Fetch processes of this worker (default: the job's setting; 0 = none).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress display or summary.")
@observe_options
def worker(
    store: str,
    job: str,
    concurrency: int | None,
    processes: int | None,
    quiet: bool,
    **observing: Any,
) -> None:
    """Join an existing JOB and fetch with it until it is finished.

    Start a job with `shoal fetch` or `shoal crawl` (any of them, on any
    machine), then run `shoal worker --store postgresql://... --job NAME` on
    as many machines as you like. Workers lease due URLs in batches, hold
    per-host politeness across the whole fleet (each host is fetched by one
    worker at a time, handed over every few seconds), and take over the work
    of a worker that dies once its leases expire. Stop a worker with Ctrl-C:
    it finishes or returns what it holds and the others go on.
    """
    from shoal.cli import _run
    from shoal.engine.fetchpool import prefork

    # Forked now, before the event loop; how many the job wants is known only inside it
    # (a pool takes what it needs and starts more, or leaves the rest idle).
    observe = Observe.of(observing)
    observe.export_profile()
    prefork(processes)
    limits = {"concurrency": concurrency, "processes": processes}
    _run(_work(store, job, limits, quiet), observe)
