"""``shoal worker``: join a job another command started, on this machine or any other;
or, with ``--queue``, fetch what request messages on RabbitMQ ask for (``shoal.queue``).

The job's recorded settings (what ``shoal fetch``/``shoal crawl`` stored when
they created it) tell the worker how to fetch: the same timeouts, retries,
politeness, scope and extraction. Nothing is admitted; the worker leases what
is due, follows links if the job is a crawl, and stops when the job has no
open rows left — the same as the command that started the job.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Any

import click
from rich.console import Console

from shoal.cli.exits import EXIT_CODES, EXIT_OK, EXIT_STORE, EXIT_USAGE, CliFailure, run_command
from shoal.cli.jobrun import (
    Interrupts,
    JobRequest,
    emitting,
    lease_ttl,
    open_ready_store,
    run_job,
)
from shoal.cli.observe import Observe, observe_options
from shoal.cli.requestopts import build_extra_headers, build_proxies, header_options, proxy_options
from shoal.cli.results import stored_spec
from shoal.core.config import CrawlConfig, Limits, Politeness
from shoal.core.errors import ConfigError, StoreError
from shoal.core.jobspec import JobSpec
from shoal.core.sendheaders import ExtraHeaders

__all__ = ["worker"]


async def _request(
    location: str,
    name: str,
    limits: dict[str, int | None],
    quiet: bool,
    emit: str | None,
    extra_headers: ExtraHeaders,
    proxies: tuple[str, ...] | None = None,
    proxy_env: bool = True,
) -> JobRequest:
    spec = await stored_spec(location, name)
    try:
        spec = replace(spec, config=_with_limits(spec.config, limits))
        if proxies is not None:
            # The job stored its proxies without credentials: this worker's own win.
            spec = replace(spec, config=replace(spec.config, proxies=proxies))
        if not proxy_env:
            spec = replace(spec, config=replace(spec.config, proxy_env=False))
    except ConfigError as exc:
        message = f"job {name!r} has settings this shoal cannot use: {exc}"
        raise CliFailure(message, EXIT_USAGE) from None
    try:
        # The job's headers are stored by name only: this worker is given their values.
        spec = replace(spec, extra_headers=spec.extra_headers.with_values_of(extra_headers))
    except ConfigError as exc:
        raise CliFailure(f"job {name!r}: {exc}", EXIT_USAGE) from None
    return JobRequest(
        store=location,
        spec=spec,
        name=name,
        command="worker",
        quiet=quiet,
        join=True,
        emit=emit,
    )


def _with_limits(config: CrawlConfig, given: dict[str, int | None]) -> CrawlConfig:
    """The job's config with the limits given to this worker (None: the job's own)."""
    changes = {name: value for name, value in given.items() if value is not None}
    if not changes:
        return config
    limits: Limits = replace(config.limits, **changes)
    return replace(config, limits=limits)


async def _work(
    location: str,
    name: str,
    limits: dict[str, int | None],
    quiet: bool,
    emit: str | None,
    extra_headers: ExtraHeaders,
    proxies: tuple[str, ...] | None,
    proxy_env: bool,
) -> int:
    request = await _request(
        location, name, limits, quiet, emit, extra_headers, proxies, proxy_env=proxy_env
    )
    return await run_job(request, Console(stderr=True))


@dataclass(frozen=True, kw_only=True)
class _QueueOptions:
    url: str
    store: str
    job: str
    requests: str
    results: str
    prefetch: int | None
    limits: dict[str, int | None]
    per_host: int
    delay: float
    quiet: bool
    emit: str | None


def default_prefetch(concurrency: int) -> int:
    """Messages a queue worker holds unacked by default: the rows its run keeps leased
    ahead (the engine's window), since each is held from delivery until its result is
    confirmed: fetch, commit and publish."""
    return min(max(4 * concurrency, 1000), 65_535)


async def _consume(options: _QueueOptions) -> int:
    from shoal.queue import BrokerUnavailable, QueueWorker, Topology
    from shoal.queue._amqp import check_broker_url

    console = Console(stderr=True)
    try:
        check_broker_url(options.url)
        topology = Topology(requests=options.requests, results=options.results)
        config = CrawlConfig(
            limits=Limits(
                concurrency=options.limits["concurrency"] or Limits().concurrency,
                processes=options.limits["processes"],
            ),
            politeness=Politeness(per_host=options.per_host, delay=options.delay),
        )
        template = JobSpec.fetch(config=config)
    except ConfigError as exc:
        raise CliFailure(str(exc), EXIT_USAGE) from None
    prefetch = options.prefetch or default_prefetch(config.limits.concurrency)
    store = await open_ready_store(options.store)
    try:
        async with emitting(options.emit) as emit:
            worker = QueueWorker(
                store,
                options.url,
                template=template,
                topology=topology,
                prefetch=prefetch,
                default_job=options.job,
                adjust=lambda spec: replace(spec, config=_with_limits(spec.config, options.limits)),
                lease_ttl=lease_ttl(),
                emit=emit,
            )
            interrupts = Interrupts(console)
            interrupts.on_first(worker.stop)
            with interrupts.installed():
                if not options.quiet:
                    console.print(
                        f"consuming {topology.requests} (prefetch {prefetch}); results to "
                        f"{topology.results}; store {store.location}",
                        markup=False,
                        highlight=False,
                    )
                try:
                    stats = await worker.run()
                except* ConfigError as group:
                    raise CliFailure(str(group.exceptions[0]), EXIT_USAGE) from None
                except* BrokerUnavailable as group:
                    message = f"broker error: {group.exceptions[0]}"
                    raise CliFailure(message, EXIT_STORE) from None
                except* StoreError as group:
                    raise CliFailure(f"store error: {group.exceptions[0]}", EXIT_STORE) from None
    finally:
        with contextlib.suppress(Exception):
            await store.close()
    if not options.quiet:
        console.print(
            f"stopped: {stats.received:,} messages, {stats.answered:,} answered "
            f"({stats.from_store:,} from the store), {stats.dead_lettered:,} dead-lettered",
            markup=False,
            highlight=False,
        )
    return EXIT_OK


@click.command(epilog=EXIT_CODES)
@click.option(
    "--store",
    envvar="SHOAL_STORE",
    required=True,
    metavar="URL|PATH",
    help="The job's store: postgresql://user@host/db for workers on several machines.",
)
@click.option(
    "--job",
    envvar="SHOAL_JOB",
    default=None,
    metavar="NAME",
    help="The job to join; with --queue, the job of messages that name none [default: queue].",
)
@click.option(
    "--queue",
    "queue_url",
    envvar="SHOAL_QUEUE",
    default=None,
    metavar="AMQP_URL",
    help="Consume request messages from RabbitMQ (amqp://user:pass@host/vhost) until "
    "stopped, and publish a result message for each.",
)
@click.option(
    "--requests",
    "requests_queue",
    envvar="SHOAL_REQUESTS",
    default="shoal.requests",
    show_default=True,
    help="With --queue: the queue of request messages (poison goes to NAME.dead).",
)
@click.option(
    "--results",
    "results_exchange",
    envvar="SHOAL_RESULTS",
    default="shoal.results",
    show_default=True,
    help="With --queue: the topic exchange (and queue) of result messages.",
)
@click.option(
    "--prefetch",
    envvar="SHOAL_PREFETCH",
    type=click.IntRange(1, 65_535),
    default=None,
    help="With --queue: messages held unacknowledged at most "
    "[default: 4 x concurrency, at least 1000].",
)
@click.option(
    "--per-host",
    envvar="SHOAL_PER_HOST",
    type=click.IntRange(1, 10_000),
    default=8,
    show_default=True,
    help="With --queue: requests in flight per host, for jobs this worker creates.",
)
@click.option(
    "--delay",
    envvar="SHOAL_DELAY",
    type=click.FloatRange(0, 3600),
    default=0.0,
    show_default=True,
    help="With --queue: seconds between request starts to one host, for jobs it creates.",
)
@click.option(
    "--emit",
    envvar="SHOAL_EMIT",
    default=None,
    metavar="AMQP_URL",
    help="Also publish every result as it lands to this broker's topic exchange "
    "shoal.results (routing key: the job).",
)
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
@header_options
@proxy_options
def worker(
    store: str,
    job: str | None,
    queue_url: str | None,
    requests_queue: str,
    results_exchange: str,
    prefetch: int | None,
    per_host: int,
    delay: float,
    emit: str | None,
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

    With --queue, the worker is fed by RabbitMQ instead: it consumes request
    messages ({"url": ..., "job"?: ..., "meta"?: ...}, or a crawl order
    {"crawl": {"seeds": [...], ...}}), fetches each URL into its job (created
    when missing) and publishes its result once it is in the store, then acks
    the request. It runs until SIGTERM/Ctrl-C, then answers what it holds and
    exits 0. See docs/queues.md.

    A job started with -H, --header-for, --user or --bearer stored their
    names only: give the worker the same ones. The job's proxies are used
    (stored without credentials); --proxy/--proxies replace them.
    """
    from shoal.engine.fetch.pool import prefork

    # Forked now, before the event loop; how many the job wants is known only inside it
    # (a pool takes what it needs and starts more, or leaves the rest idle).
    observe = Observe.of(observing)
    extra_headers = build_extra_headers(observing)
    proxies = build_proxies(observing) or None
    observe.export_profile()
    prefork(processes)
    limits = {"concurrency": concurrency, "processes": processes}
    if queue_url is not None:
        options = _QueueOptions(
            url=queue_url,
            store=store,
            job=job or "queue",
            requests=requests_queue,
            results=results_exchange,
            prefetch=prefetch,
            limits=limits,
            per_host=per_host,
            delay=delay,
            quiet=quiet,
            emit=emit,
        )
        run_command(_consume(options), observe)
        return
    if job is None:
        raise click.UsageError("give the job to join (--job NAME), or a queue (--queue URL)")
    proxy_env = not observing.get("no_proxy_env")
    run_command(_work(store, job, limits, quiet, emit, extra_headers, proxies, proxy_env), observe)
