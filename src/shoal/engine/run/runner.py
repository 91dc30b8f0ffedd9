"""The one runner: a ``JobSpec`` on a store, to results and progress.

Every way of running a job goes through ``JobRunner``: ``shoal fetch``,
``shoal crawl`` and ``shoal worker``, the Python API, and the service. It

1. finds the job (``open``): by the name given, or by the spec's default name
   (``JobSpec.default_name``; when a job of that name exists with settings
   this spec may not change, ``NAME-2``, ``NAME-3``... are tried, so a
   default name never resumes a different job);
2. compares the spec with the one the job stored: the same resumes; changes
   that can apply are applied and described in ``notes``; others raise
   ``JobConflict`` naming them (unless ``fresh``, which starts the job over);
3. makes sure no other live command runs the job (a command registers as a
   worker whose owner starts with ``COMMAND_OWNER``; workers that join with
   ``join=True`` do not count, and a dead holder never blocks: the same
   rules as for taking back a dead worker's leases);
4. reopens what a raised limit or ``refetch`` asks to fetch again (or, for a
   ``recrawl``, sends the finished URLs back to be asked again whether they
   changed: ``shoal.core.revisit``), admits a crawl's seeds, and then runs the
   engine's ``JobRun`` on it (``run``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeAlias

from shoal.core.errors import ConfigError, JobConflict, StoreError
from shoal.core.hosts import AutoThrottle
from shoal.core.jobspec import JobSpec, SpecComparison
from shoal.core.model import JobInfo, Request, WorkerInfo
from shoal.core.ports import Store
from shoal.core.revisit import Recrawl
from shoal.core.secrets import HeldSecrets, without_redacted
from shoal.engine.fetch.cookies import JobCookies
from shoal.engine.fleet.patience import patiently
from shoal.engine.frontier.stats import StatsSnapshot
from shoal.engine.resources import pid_alive
from shoal.engine.run.job import JobRun, ResultListener, RunOutcome
from shoal.engine.run.plan import (
    chained,
    conditional_headers,
    plan_for,
    seed_requests,
    sought_sitemaps,
)

__all__ = [
    "COMMAND_OWNER",
    "AdmitContext",
    "Admission",
    "JobRunner",
    "Refetch",
    "live_commands",
]

log = logging.getLogger("shoal.engine.run.runner")

COMMAND_OWNER = "command-"
"""How the owner id of a command (not a joining worker) starts, in the workers table."""

Refetch: TypeAlias = Literal["failed", "all"]

_MAX_NAME_TRIES = 1000


@dataclass(frozen=True, slots=True)
class AdmitContext:
    """What an admission running beside the run needs: where to admit, how to report
    what it admitted, and whether to stop early."""

    store: Store
    job: JobInfo
    on_admitted: Callable[[int], None]
    should_stop: Callable[[], bool]


Admission: TypeAlias = Callable[[AdmitContext], Awaitable[object]]


def live_commands(
    workers: Sequence[WorkerInfo], *, now: float, lease_ttl: float
) -> list[WorkerInfo]:
    """The registered commands among ``workers`` that are alive: on this machine their
    process exists; elsewhere their heartbeat is recent (within three lease periods)."""
    here = socket.gethostname()
    alive: list[WorkerInfo] = []
    for worker in workers:
        if not worker.owner.startswith(COMMAND_OWNER):
            continue
        if worker.hostname == here and not pid_alive(worker.pid):
            continue
        if now - worker.heartbeat_at > 3 * lease_ttl:
            continue
        alive.append(worker)
    return alive


class JobRunner:
    """Runs one ``JobSpec`` on one open store: ``await open()``, then ``await run()``.

    ``name``: the job's name (None: the spec's default name, see the module docstring).
    ``fresh``: discard the job's rows first and start it over. ``refetch``: fetch again
    what is finished (``failed``: network errors and 5xx; ``all``). ``join``: take part
    in an existing job with its stored settings (``shoal worker``): no comparison, no
    admission, no lock. ``listeners`` are called on the loop with each committed batch
    of results; ``before_fetch`` changes what is sent (headers, auth), never what is
    stored. ``cookies``: the run's cookie jar (default: an empty one, unless the spec
    turns cookies off). ``block_private``: connect only to public addresses (what the
    service does unless told otherwise; fetching in this process only), kept with the job
    as ``JobSpec.public_only``, which a joining worker then obeys too. ``recrawl``: ask
    the job's finished URLs again whether they changed (``shoal.core.revisit``).
    """

    def __init__(
        self,
        store: Store,
        spec: JobSpec,
        *,
        name: str | None = None,
        fresh: bool = False,
        refetch: Refetch | None = None,
        join: bool = False,
        listeners: Sequence[ResultListener] = (),
        before_fetch: Callable[[Request], Request] | None = None,
        cookies: JobCookies | None = None,
        lease_ttl: float = 60.0,
        block_private: bool = False,
        recrawl: Recrawl | None = None,
    ) -> None:
        if refetch not in (None, "failed", "all"):
            raise ConfigError(f"refetch must be 'failed' or 'all', got {refetch!r}")
        if recrawl is not None and not isinstance(recrawl, Recrawl):
            raise ConfigError(f"recrawl must be a Recrawl, got {type(recrawl).__name__}")
        if recrawl is not None and (refetch is not None or fresh or join):
            raise ConfigError(
                "a recrawl asks again what the job has: it goes with neither --refetch, "
                "--fresh nor a joining worker"
            )
        if join and name is None:
            raise ConfigError("a worker joins a job by its name")
        if block_private and not spec.public_only:
            spec = replace(spec, public_only=True)
        self.store = store
        self.spec = spec
        self.notes: list[str] = []
        """One-line messages on what ``open`` found and did, for a person to read."""
        self.resumed = False
        """The job existed before ``open`` (and was not started over)."""
        self._name = name
        self._fresh = fresh
        self._refetch = refetch
        self._recrawl = recrawl
        self._join = join
        self._listeners = list(listeners)
        self._before_fetch = before_fetch
        # A seed's credentials: never stored, put back on before it is sent (core.secrets).
        self._secrets = HeldSecrets()
        self.cookies = cookies if cookies is not None or not spec.cookies else JobCookies()
        """The run's cookie jar (None with the spec's cookies off)."""
        self._lease_ttl = lease_ttl
        # A job that connects only to public addresses does so whoever runs it.
        self._block_private = spec.public_only
        self.owner = ("" if join else COMMAND_OWNER) + uuid.uuid4().hex
        self._job: JobInfo | None = None
        self._crawler: JobRun | None = None
        self._ran = False

    # -- public -------------------------------------------------------------

    @property
    def job(self) -> JobInfo:
        if self._job is None:
            raise ConfigError("open the runner first")
        return self._job

    async def open(self) -> JobInfo:
        """Find or create the job, settle the spec with what it stored, take the job for
        this command, reopen and admit what the spec asks for. Raises ``JobConflict``."""
        store = self.store
        if self.spec.extra_headers.missing:
            raise ConfigError(
                "this job sends headers whose values are not stored "
                f"({'; '.join(self.spec.extra_headers.summary())}): give them again"
            )
        if self._join:
            assert self._name is not None
            job = await store.get_job(self._name)
            if job is None:
                raise ConfigError(f"no job {self._name!r} in {store.location}")
            self._job = job
            self.resumed = True
            self._crawler = self._make_crawler(job)
            await self._restore_cookies(job)
            return job
        job, stored = await self._find_job()
        try:
            await self._hold(job)
            if stored is not None and self._fresh:
                job = await self._start_over(job)
                stored = None
            if stored is not None:
                self.resumed = True
                await self._settle(job, stored)
            if self._refetch is not None:
                reopened = await store.reopen(job.id, which=self._refetch)
                self.notes.append(f"job {job.name}: {reopened:,} finished URLs to fetch again")
            if self._recrawl is not None:
                await self._revisit(job, self._recrawl)
            if self.spec.kind == "crawl":
                await self._admit_seeds(job)
        except BaseException:
            await store.unregister_worker(job.id, self.owner)
            raise
        self._job = job
        self._crawler = self._make_crawler(job)
        await self._restore_cookies(job)
        return job

    async def _restore_cookies(self, job: JobInfo) -> None:
        """A resumed job starts with the cookies its last run kept."""
        if self.cookies is None or not self.spec.cookies:
            return
        store = self.store
        stored = await patiently(lambda: store.get_cookies(job.id))
        self._cookies_kept = stored
        if stored:
            restored = self.cookies.restore(stored)
            if restored:
                self.notes.append(f"job {job.name}: {restored:,} cookies kept from earlier runs")

    async def _keep_cookies(self) -> None:
        """Store the jar with the job, for its next run (or a worker joining it)."""
        if self.cookies is None or not self.spec.cookies or self._job is None:
            return
        if self._cookies_kept is None and not len(self.cookies):
            return  # nothing stored, nothing to store
        store, job_id, data = self.store, self._job.id, self.cookies.dumps()
        if data == self._cookies_kept:
            return  # the job's stored jar already says this
        try:
            await patiently(lambda: store.put_cookies(job_id, data))
            self._cookies_kept = data
        except StoreError as exc:
            # The results are safe; only the session is lost: the next run logs in again.
            log.warning("the job's cookies were not stored: %s", exc)

    async def run(self, admission: Admission | None = None) -> RunOutcome:
        """Fetch until the job has no open rows (or ``stop()``). ``admission``, if given,
        runs beside the fetching and admits rows (a long input read as it goes)."""
        crawler = self.crawler
        job, store = self.job, self.store
        self._ran = True
        wrapped = None
        if admission is not None:

            async def wrapped(running: JobRun) -> None:
                context = AdmitContext(store, job, running.note_admitted, lambda: running.stopping)
                await admission(context)

        outcome = await crawler.run(wrapped)
        await self._keep_cookies()
        return outcome

    def _make_crawler(self, job: JobInfo) -> JobRun:
        spec = self.spec
        plan = plan_for(spec)
        before_fetch = chained(
            conditional_headers,
            chained(spec.extra_headers.before_fetch(spec.credential_hosts()), self._before_fetch),
        )
        cookies = self.cookies if spec.cookies else None
        if cookies is not None:
            # Last: a Cookie header given with -H or a JSON input line wins over the jar.
            before_fetch = chained(before_fetch, cookies.add_to)
        return JobRun(
            self.store,
            job,
            spec.config,
            processor=plan.processor,
            listeners=self._listeners,
            robots=plan.robots,
            autothrottle=AutoThrottle() if spec.autothrottle else None,
            sitemaps_from_robots=spec.sitemaps,
            sitemaps_sought=sought_sitemaps(spec),
            strict_depth=spec.depth is not None,
            lease_ttl=self._lease_ttl,
            before_fetch=self._restored_then(before_fetch),
            after_fetch=cookies.take_from if cookies is not None else None,
            owner=self.owner,
            block_private=self._block_private,
        )

    def _restored_then(
        self, before_fetch: Callable[[Request], Request] | None
    ) -> Callable[[Request], Request]:
        """What the crawler applies before sending: the seeds' held credentials, the
        caller's ``before_fetch`` (its own held values, headers per host), and last the
        removal of redacted headers nobody put back."""
        restore = self._secrets.restore
        if before_fetch is None:
            return lambda request: without_redacted(restore(request))
        return lambda request: without_redacted(before_fetch(restore(request)))

    async def close(self) -> None:
        """Let go of the job if ``run`` never ran (a run lets go of it itself)."""
        if self._job is not None and not self._ran and not self._join:
            await self.store.unregister_worker(self._job.id, self.owner)

    def stop(self) -> None:
        """End the run gracefully: in-flight fetches finish, the rest is released."""
        self.crawler.stop()

    @property
    def stopping(self) -> bool:
        return self.crawler.stopping

    @property
    def crawler(self) -> JobRun:
        """The engine run of this job (made by ``open``)."""
        if self._crawler is None:
            raise ConfigError("open the runner first")
        return self._crawler

    def snapshot(self) -> StatsSnapshot:
        return self.crawler.snapshot()

    # -- opening --------------------------------------------------------------

    async def _find_job(self) -> tuple[JobInfo, JobSpec | None]:
        """The job this run is for, and the spec it stored (None: created now)."""
        store, spec = self.store, self.spec
        record = spec.as_record()
        if self._name is not None:
            names = [self._name]
        else:
            base = spec.default_name()
            names = [base, *(f"{base}-{n}" for n in range(2, _MAX_NAME_TRIES))]
        skipped: list[str] = []
        for name in names:
            existing = await store.get_job(name)
            if existing is None:
                job = await store.ensure_job(name, mode=spec.kind, config=record)
                if skipped:
                    self.notes.append(
                        f"job {skipped[0]} holds other settings; this is job {job.name}"
                    )
                return job, None
            stored, comparison = self._compared(existing)
            if self._fresh and self._name is not None:
                return existing, stored or spec
            if stored is not None and not comparison.conflicts:
                return existing, stored
            if self._name is not None and existing.mode != spec.kind and not self._fresh:
                raise JobConflict(
                    f"job {name!r} is a {existing.mode} job in {store.location}; choose "
                    "another job name (--job NEW), or start it over (--fresh)"
                )
            if (
                stored is not None
                and comparison.conflicts == ("extra_headers",)
                and (self._name is not None or not spec.extra_headers.given)
            ):
                # Resuming without the headers given before is most likely a forgotten
                # --user or -H: refuse rather than go on unauthenticated as a new job.
                raise JobConflict(
                    f"job {name!r} in {store.location} sends headers whose values are not "
                    f"stored ({'; '.join(stored.extra_headers.summary()) or 'none'}); this "
                    f"run gives ({'; '.join(self.spec.extra_headers.summary()) or 'none'}): "
                    "give the same ones again, choose another job name (--job NEW), or start "
                    "it over (--fresh)"
                )
            if self._name is not None:
                raise JobConflict(
                    f"job {name!r} in {store.location} was created with other settings "
                    f"({', '.join(comparison.conflicts)}): choose another job name "
                    "(--job NEW), or start it over (--fresh)"
                )
            skipped.append(name)
        raise JobConflict(f"too many jobs named {names[0]}-N in {store.location}; give a name")

    def _compared(self, existing: JobInfo) -> tuple[JobSpec | None, SpecComparison]:
        if existing.mode != self.spec.kind:
            return None, SpecComparison(conflicts=(f"kind ({existing.mode} job)",))
        try:
            stored = JobSpec.from_record(existing.mode, existing.config)
        except ConfigError as exc:
            return None, SpecComparison(conflicts=(f"settings unreadable: {exc}",))
        comparison = self.spec.compare(stored)
        if self._name is not None and "input" in comparison.conflicts:
            # A fetch job named on purpose takes more input: its URLs join the job (the
            # ones it has already are not fetched again). Only a default name must not
            # resume a job made from another list.
            comparison = replace(
                comparison, conflicts=tuple(c for c in comparison.conflicts if c != "input")
            )
            self.notes.append(f"job {existing.name}: adding this input's URLs to the job")
        return stored, comparison

    async def _hold(self, job: JobInfo) -> None:
        """Register this command on the job, unless another live command runs it."""
        store = self.store
        await store.register_worker(
            job.id, self.owner, pid=os.getpid(), hostname=socket.gethostname(), now=time.time()
        )
        others = [
            w
            for w in live_commands(
                await store.list_workers(job.id), now=time.time(), lease_ttl=self._lease_ttl
            )
            if w.owner != self.owner
        ]
        if others:
            await store.unregister_worker(job.id, self.owner)
            holder = others[0]
            raise JobConflict(
                f"job {job.name!r} is being run by another command (pid {holder.pid} on "
                f"{holder.hostname}); wait for it to finish, or join it with "
                f"shoal worker --store {store.location} --job {job.name}"
            )

    async def _start_over(self, job: JobInfo) -> JobInfo:
        store = self.store
        await store.delete_job(job.id)
        fresh = await store.ensure_job(job.name, mode=self.spec.kind, config=self.spec.as_record())
        await store.register_worker(
            fresh.id, self.owner, pid=os.getpid(), hostname=socket.gethostname(), now=time.time()
        )
        self.notes.append(f"job {job.name}: started over (--fresh)")
        return fresh

    async def _settle(self, job: JobInfo, stored: JobSpec) -> None:
        """Apply what changed since the job stored its spec, and say what."""
        store, spec = self.store, self.spec
        comparison = spec.compare(stored)
        if not comparison.changes:
            return
        await store.update_job(job.id, config=spec.as_record())
        notes = [f"job {job.name}: applying changed settings: {'; '.join(comparison.changes)}"]
        if "depth" in comparison.raised and stored.depth is not None:
            # Pages at the old depth limit had their links cut off: read them again.
            again = await store.reopen(job.id, which="pages", depth=stored.depth)
            if again:
                notes.append(f"{again:,} pages at depth {stored.depth} fetched again for links")
        elif {"max_pages", "max_pages_per_host"} & set(comparison.raised):
            counters = await store.counters(job.id)
            if counters.get("max_pages") or counters.get("host_page_limit"):
                # Links turned away over the old limit were not kept: find them again.
                again = await store.reopen(job.id, which="pages")
                notes.append(f"{again:,} pages fetched again for the links the limit cut off")
        if spec.config.save_bodies and not stored.config.save_bodies and not self._refetch:
            notes.append("pages fetched before keep no body (--refetch all fetches them again)")
        self.notes.append("; ".join(notes))

    async def _revisit(self, job: JobInfo, recrawl: Recrawl) -> None:
        now = time.time()
        again = await self.store.revisit(
            job.id,
            fetched_before=recrawl.fetched_before(now),
            keep_history=self.spec.keep_history,
            now=now,
        )
        older = "" if recrawl.older_than is None else " fetched before the --revisit-after age"
        self.notes.append(
            f"job {job.name}: recrawling {again:,} finished URLs{older}, each asked whether "
            "it changed"
        )

    async def _admit_seeds(self, job: JobInfo) -> None:
        spec, store = self.spec, self.store
        await store.set_limits(
            job.id, max_pages=spec.max_pages, max_pages_per_host=spec.max_pages_per_host
        )
        seeds = [self._secrets.hold(r) for r in seed_requests(spec)]
        await store.add_requests(job.id, seeds, now=time.time())
