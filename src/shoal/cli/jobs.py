"""``shoal jobs``: the jobs of a store, what each is doing, and ``jobs rm`` to remove one."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from shoal.cli.exits import EXIT_CODES, EXIT_USAGE, CliFailure, require_store_file, run_command
from shoal.cli.jobrun import lease_ttl, open_ready_store
from shoal.cli.options import read_store_option
from shoal.cli.progress import _human_bytes
from shoal.cli.results import job_named
from shoal.core.jobstate import JobState, job_state, live_workers
from shoal.core.model import JobInfo, WorkerInfo
from shoal.core.ports import Store
from shoal.export.records import iso_utc

__all__ = ["jobs"]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRow:
    """One line of ``shoal jobs``."""

    name: str
    kind: str
    state: JobState
    done: int
    failed: int
    pending: int
    bytes: int
    started_at: float
    finished_at: float | None

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "state": self.state.value,
            "done": self.done,
            "failed": self.failed,
            "pending": self.pending,
            "bytes": self.bytes,
            "started_at": iso_utc(self.started_at),
            "finished_at": None if self.finished_at is None else iso_utc(self.finished_at),
        }


async def job_row(store: Store, job: JobInfo, *, now: float, ttl: float) -> JobRow:
    summary = await store.summary(job.id)
    workers = await store.list_workers(job.id)
    counts = summary.counts
    state = job_state(counts=counts, workers=workers, now=now, ttl=ttl)
    return JobRow(
        name=job.name,
        kind=job.mode,
        state=state,
        done=counts.done,
        failed=counts.failed,
        pending=counts.open,
        bytes=summary.bytes,
        started_at=job.created_at,
        finished_at=summary.last_fetched_at if state is JobState.FINISHED else None,
    )


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


async def _list(location: str, *, as_json: bool) -> int:
    ttl = lease_ttl()
    store = await open_ready_store(location)
    try:
        now = time.time()
        rows = [await job_row(store, job, now=now, ttl=ttl) for job in await store.list_jobs()]
        size = await store.size_bytes()
        location = store.location  # a DSN without its password
    finally:
        await store.close()
    if as_json:
        document = {"store": location, "size_bytes": size, "jobs": [r.record() for r in rows]}
        click.echo(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
        return 0
    console = Console()
    title = f"jobs in {location} ({_human_bytes(size)})"
    if not rows:
        console.print(f"no jobs in {location}", markup=False, highlight=False)
        return 0
    table = Table(title=title, title_justify="left")
    for column in ("job", "kind", "state", "done", "failed", "pending", "bytes"):
        table.add_column(column, justify="left" if column in ("job", "kind", "state") else "right")
    table.add_column("started")
    table.add_column("finished")
    for row in rows:
        table.add_row(
            row.name,
            row.kind,
            row.state.value,
            f"{row.done:,}",
            f"{row.failed:,}",
            f"{row.pending:,}",
            _human_bytes(row.bytes),
            _when(row.started_at),
            _when(row.finished_at),
        )
    console.print(table)
    return 0


def _running(name: str, workers: list[WorkerInfo]) -> CliFailure:
    holders = ", ".join(f"pid {w.pid} on {w.hostname}" for w in workers)
    return CliFailure(
        f"job {name!r} is running ({holders}); stop it before removing it", EXIT_USAGE
    )


async def _remove(location: str, name: str) -> int:
    ttl = lease_ttl()
    store = await open_ready_store(location)
    try:
        job = await job_named(store, name)
        now = time.time()
        alive = live_workers(await store.list_workers(job.id), now=now, ttl=ttl)
        if alive:
            raise _running(name, alive)
        counts = await store.counts(job.id)
        if not await store.delete_job(job.id, alive_since=now - ttl):  # one started since
            raise _running(name, await store.list_workers(job.id))
    finally:
        await store.close()
    Console(stderr=True).print(
        f"removed job {name} ({counts.total:,} requests, {counts.finished:,} results)",
        markup=False,
        highlight=False,
    )
    return 0


@click.group(invoke_without_command=True, epilog=EXIT_CODES)
@read_store_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@click.pass_context
def jobs(ctx: click.Context, store: str, as_json: bool) -> None:
    """List the jobs in a store: name, kind, state, counts, times, bytes.

    \b
    state: running      a process works on it now (its heartbeat is recent)
           interrupted  URLs remain and nothing works on it: run it again to resume
           finished     every URL has an outcome
    """
    ctx.ensure_object(dict)["store"] = store
    if ctx.invoked_subcommand is None:
        require_store_file(store)
        run_command(_list(store, as_json=as_json))


@jobs.command("rm", epilog=EXIT_CODES)
@click.argument("name")
@click.option(
    "--store",
    envvar="SHOAL_STORE",
    default=None,
    metavar="PATH|URL",
    help="The store to change (default: the one given to 'jobs', or shoal.db).",
)
@click.pass_context
def remove(ctx: click.Context, name: str, store: str | None) -> None:
    """Remove the job NAME and all its rows (results, frontier, saved bodies no other job
    uses). A running job is refused."""
    location = store or ctx.obj["store"]
    require_store_file(location)
    run_command(_remove(location, name))
