"""The service's jobs: each runs through the one ``JobRunner``, as a task of the
service's own TaskGroup.

What an operator asks of a job (run, pause, cancel) is kept in the store
(``JobInfo.desired``), so a restarted service resumes the jobs that were running and
leaves the others alone. A job's failure is recorded as its state (``failed``, with the
error) and never leaves its task: the service goes on.

States, as the API shows them:

``queued``     created; its run has not started yet
``running``    its run is going on in this service
``paused``     paused by an operator, stopped by a shutdown, or open rows nobody runs
``finished``   no open rows left
``cancelled``  cancelled by an operator; what was recorded stays
``failed``     its last run raised (``error`` says what)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, TypeAlias

from shoal.core.errors import ConfigError, JobConflict, ShoalError
from shoal.core.jobspec import JobSpec
from shoal.core.model import FetchResult, JobCounts, JobInfo, NewRequest
from shoal.core.ports import Store
from shoal.engine.frontier.stats import StatsSnapshot
from shoal.engine.run.runner import Admission, AdmitContext, JobRunner
from shoal.service._events import EventHub

__all__ = ["JobManager", "JobState", "NoSuchJob", "ServiceConflict", "SpecConflict"]

log = logging.getLogger(__name__)

JobState: TypeAlias = Literal["queued", "running", "paused", "finished", "cancelled", "failed"]

_ADMIT_BATCH = 5000
_STATES_TTL = 1.0  # seconds a list of every job's state serves new clients


class NoSuchJob(ShoalError, LookupError):
    """No job of that name in the store."""


class ServiceConflict(ShoalError):
    """What was asked cannot be done in the job's state (or the service is full)."""


class SpecConflict(JobConflict):
    """A job of that name exists with settings this spec may not change: ``conflicts``."""

    def __init__(self, message: str, conflicts: Sequence[str]) -> None:
        super().__init__(message)
        self.conflicts = tuple(conflicts)


@dataclass
class _JobEntry:
    """A job this service runs (or ran since it started)."""

    name: str
    state: JobState = "queued"
    runner: JobRunner | None = None
    task: asyncio.Task[None] | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    last: StatsSnapshot | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as the API shows it."""

    job: JobInfo
    state: JobState
    counts: JobCounts
    snapshot: StatsSnapshot | None
    started_at: float | None
    finished_at: float | None
    error: str | None
    notes: tuple[str, ...]


ResultHook = Callable[[str, Sequence[FetchResult]], None]


class JobManager:
    """Starts, pauses, resumes, cancels and deletes jobs on one open store.

    ``block_private``: jobs connect only to public addresses (``--allow-private`` lifts
    it); ``configure`` adjusts every spec the service runs (in-process fetching).

    Use as ``async with JobManager(...)``: entering resumes the jobs the store says were
    running; leaving stops every run gracefully (their desired state stays ``running``,
    so the next service resumes them) and waits for them.
    """

    def __init__(
        self,
        store: Store,
        hub: EventHub,
        *,
        max_jobs: int = 100,
        progress_interval: float = 1.0,
        configure: Callable[[JobSpec], JobSpec] = lambda spec: spec,
        on_results: ResultHook | None = None,
        lease_ttl: float = 60.0,
        block_private: bool = True,
    ) -> None:
        self.store = store
        self._block_private = block_private
        self.hub = hub
        self._max_jobs = max_jobs
        self._interval = progress_interval
        self._configure = configure
        self._on_results = on_results
        self._lease_ttl = lease_ttl
        self._live: dict[str, _JobEntry] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._closing = False
        self._lock = asyncio.Lock()  # one operator action at a time: no interleaved starts
        # Every job's state as ``states_now`` last worked it out, and when (monotonic).
        self._states: asyncio.Future[list[tuple[str, JobState]]] | None = None
        self._states_at = 0.0

    # -- lifetime -------------------------------------------------------------

    async def __aenter__(self) -> JobManager:
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        self._ticker = self._tasks.create_task(self._tick(), name="shoal-service-progress")
        for job in await self.store.list_jobs():
            if job.desired == "running":
                try:
                    await self._start(job.name, self._stored_spec(job), resuming=True)
                except ShoalError as exc:
                    entry = self._entry(job.name)
                    self._set_state(entry, "failed", error=str(exc))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing = True
        for entry in self._live.values():
            if entry.runner is not None and entry.task is not None and not entry.task.done():
                entry.runner.stop()
        assert self._tasks is not None
        tasks, self._tasks = self._tasks, None
        if self._ticker is not None:
            self._ticker.cancel()
        await tasks.__aexit__(None, None, None)

    @property
    def running(self) -> list[str]:
        return [name for name, entry in self._live.items() if entry.state == "running"]

    # -- operator actions -------------------------------------------------------

    async def create(self, name: str, spec: JobSpec, urls: Sequence[NewRequest] = ()) -> bool:
        """Create and start a job, or resume the same one: True when created now. Raises
        ``SpecConflict`` naming the settings a job of that name holds otherwise."""
        spec = self._configure(spec)
        async with self._lock:
            existing = await self.store.get_job(name)
            if existing is None:
                if len(await self.store.list_jobs()) >= self._max_jobs:
                    raise ServiceConflict(f"the service holds {self._max_jobs} jobs already")
            else:
                self._check_same(existing, spec)
                if existing.desired == "cancelled":
                    raise ServiceConflict(f"job {name!r} was cancelled; delete it first")
                entry = self._live.get(name)
                if entry is not None and entry.state in ("queued", "running"):
                    if urls:
                        await self._admit_now(entry, urls)
                    return False
            await self._start(name, spec, urls=urls)
            return existing is None

    async def pause(self, name: str) -> None:
        async with self._lock:
            job = await self._job(name)
            if job.desired == "cancelled":
                raise ServiceConflict(f"job {name!r} was cancelled")
            await self.store.set_desired(job.id, "paused")
            entry = self._entry(name)
            if entry.runner is not None and entry.task is not None and not entry.task.done():
                entry.runner.stop()
                await asyncio.wait({entry.task})
            self._set_state(entry, self._idle_state(job, await self.store.counts(job.id)))

    async def resume(self, name: str) -> None:
        async with self._lock:
            job = await self._job(name)
            if job.desired == "cancelled":
                raise ServiceConflict(f"job {name!r} was cancelled; it cannot resume")
            entry = self._live.get(name)
            if entry is not None and entry.state in ("queued", "running"):
                return
            await self._start(name, self._stored_spec(job), resuming=True)

    async def cancel(self, name: str) -> None:
        async with self._lock:
            job = await self._job(name)
            await self.store.set_desired(job.id, "cancelled")
            entry = self._entry(name)
            if entry.runner is not None and entry.task is not None and not entry.task.done():
                entry.runner.stop()
                await asyncio.wait({entry.task})
            self._set_state(entry, "cancelled")

    async def delete(self, name: str) -> None:
        async with self._lock:
            job = await self._job(name)
            await self.store.set_desired(job.id, "cancelled")
            entry = self._live.get(name)
            if entry is not None and entry.runner is not None and entry.task is not None:
                entry.runner.stop()
                await asyncio.wait({entry.task})
            await self.store.delete_job(job.id)
            self._live.pop(name, None)
            self._states = None
            self.hub.publish_state(name, "deleted")

    async def add_urls(self, name: str, requests: Sequence[NewRequest]) -> int:
        """Admit requests to a fetch job; returns how many were new. The job runs again if
        it had finished (not if an operator paused or cancelled it)."""
        async with self._lock:
            job = await self._job(name)
            if job.mode != "fetch":
                raise ServiceConflict(f"job {name!r} is a crawl; URLs are added to fetch jobs")
            if job.desired == "cancelled":
                raise ServiceConflict(f"job {name!r} was cancelled")
            entry = self._live.get(name)
            if entry is not None and entry.state in ("queued", "running"):
                return await self._admit_now(entry, requests)
            added = await self._add(job, requests)
            if added and job.desired != "paused":
                await self._start(name, self._stored_spec(job), resuming=True)
            return added

    # -- reading ------------------------------------------------------------------

    async def view(self, name: str) -> JobView:
        return await self._view(await self._job(name))

    async def views(self) -> list[JobView]:
        return [await self._view(job) for job in await self.store.list_jobs()]

    async def job(self, name: str) -> JobInfo:
        return await self._job(name)

    def snapshot(self, name: str) -> StatsSnapshot | None:
        entry = self._live.get(name)
        if entry is None:
            return None
        if entry.runner is not None and entry.state == "running":
            with contextlib.suppress(ConfigError):
                entry.last = entry.runner.snapshot()
        return entry.last

    async def states_now(self) -> list[tuple[str, JobState]]:
        """Every job's name and state, as a new WebSocket client is first told them.

        Working a state out counts the job's rows, a scan of its results: the list is
        shared by the clients that ask within ``_STATES_TTL`` seconds and until a job
        changes state, is created or is deleted. A thousand clients joining at once then
        cost the store one look, not a thousand beside the running crawls."""
        pending = self._states
        now = time.monotonic()
        if (
            pending is None
            or now - self._states_at > _STATES_TTL
            or (pending.done() and (pending.cancelled() or pending.exception() is not None))
        ):
            self._states_at = now
            pending = self._states = asyncio.ensure_future(self._all_states())
        return await asyncio.shield(pending)

    async def _all_states(self) -> list[tuple[str, JobState]]:
        return [(view.job.name, view.state) for view in await self.views()]

    def states(self) -> dict[str, JobState]:
        return {name: entry.state for name, entry in self._live.items()}

    # -- inside ---------------------------------------------------------------------

    async def _job(self, name: str) -> JobInfo:
        job = await self.store.get_job(name)
        if job is None:
            raise NoSuchJob(f"no job {name!r}")
        return job

    async def _view(self, job: JobInfo) -> JobView:
        counts = await self.store.counts(job.id)
        entry = self._live.get(job.name)
        if entry is not None and entry.state in ("queued", "running", "failed"):
            state: JobState = entry.state
        else:
            state = self._idle_state(job, counts)
        return JobView(
            job=job,
            state=state,
            counts=counts,
            snapshot=self.snapshot(job.name),
            started_at=entry.started_at if entry else None,
            finished_at=entry.finished_at if entry else None,
            error=entry.error if entry else None,
            notes=tuple(entry.notes) if entry else (),
        )

    @staticmethod
    def _idle_state(job: JobInfo, counts: JobCounts) -> JobState:
        if job.desired == "cancelled":
            return "cancelled"
        if counts.open == 0:
            return "finished"
        return "paused"

    def _entry(self, name: str) -> _JobEntry:
        entry = self._live.get(name)
        if entry is None:
            entry = self._live[name] = _JobEntry(name)
        return entry

    def _set_state(self, entry: _JobEntry, state: JobState, *, error: str | None = None) -> None:
        entry.error = error if state == "failed" else None
        if state != entry.state or error is not None:
            entry.state = state
            self._states = None
            self.hub.publish_state(entry.name, state, error=error)

    def _stored_spec(self, job: JobInfo) -> JobSpec:
        try:
            return JobSpec.from_record(job.mode, job.config)
        except ConfigError as exc:
            raise ServiceConflict(f"job {job.name!r}: {exc}") from None

    def _check_same(self, existing: JobInfo, spec: JobSpec) -> None:
        if existing.mode != spec.kind:
            raise SpecConflict(
                f"job {existing.name!r} is a {existing.mode} job", [f"kind ({existing.mode})"]
            )
        comparison = spec.compare(self._stored_spec(existing))
        conflicts = [c for c in comparison.conflicts if c != "input"]
        if conflicts:
            raise SpecConflict(
                f"job {existing.name!r} was created with other settings: {', '.join(conflicts)}",
                conflicts,
            )

    async def _start(
        self,
        name: str,
        spec: JobSpec,
        *,
        urls: Sequence[NewRequest] = (),
        resuming: bool = False,
    ) -> None:
        if self._tasks is None or self._closing:
            raise ServiceConflict("the service is shutting down")
        entry = self._entry(name)
        if entry.task is not None and not entry.task.done():
            await asyncio.wait({entry.task})  # a stopping run lets go of the job first
        listener = self._listener(name)
        runner = JobRunner(
            self.store,
            spec,
            name=name,
            listeners=[listener],
            lease_ttl=self._lease_ttl,
            block_private=self._block_private,
        )
        await runner.open()
        job = runner.job
        try:
            await self.store.set_desired(job.id, "running")
        except BaseException:
            await runner.close()
            raise
        entry.runner = runner
        entry.notes = list(runner.notes)
        entry.error = None
        entry.started_at = time.time()
        entry.finished_at = None
        self._set_state(entry, "queued")
        entry.task = self._tasks.create_task(
            self._run(entry, runner, list(urls)), name=f"shoal-service-job-{name}"
        )

    def _listener(self, name: str) -> Callable[[Sequence[FetchResult]], None]:
        hub, hook = self.hub, self._on_results

        def on_results(batch: Sequence[FetchResult]) -> None:
            hub.publish_pages(name, batch)
            if hook is not None:
                hook(name, batch)

        return on_results

    async def _run(self, entry: _JobEntry, runner: JobRunner, urls: list[NewRequest]) -> None:
        """One job's task: runs until the job has no open rows (again, if rows were added
        while it was finishing), until stopped, or until it fails. Never raises but for
        cancellation."""
        admission: Admission | None = None
        if urls:

            async def admission(context: AdmitContext) -> None:
                for start in range(0, len(urls), _ADMIT_BATCH):
                    if context.should_stop():
                        return
                    chunk = urls[start : start + _ADMIT_BATCH]
                    added = await context.store.add_requests(context.job.id, chunk, now=time.time())
                    context.on_admitted(added)

        self._set_state(entry, "running")
        try:
            while True:
                outcome = await runner.run(admission)
                entry.last = outcome.stats
                job = await self._job(entry.name)
                counts = await self.store.counts(job.id)
                if outcome.completed and counts.open and job.desired == "running":
                    # URLs were added as the run was finishing: run on them too.
                    runner = JobRunner(
                        self.store,
                        runner.spec,
                        name=entry.name,
                        listeners=[self._listener(entry.name)],
                        lease_ttl=self._lease_ttl,
                        block_private=self._block_private,
                    )
                    await runner.open()
                    entry.runner, admission = runner, None
                    continue
                break
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a job's failure is its state, not ours
            log.warning("job %s failed: %s", entry.name, _describe(exc), exc_info=exc)
            entry.finished_at = time.time()
            self._set_state(entry, "failed", error=_describe(exc))
            return
        entry.finished_at = time.time()
        if entry.last is not None:  # the run's last numbers, before it leaves "running"
            self.hub.publish_progress(entry.name, progress_of(entry.last))
        self._set_state(entry, self._idle_state(job, counts))

    async def _admit_now(self, entry: _JobEntry, requests: Sequence[NewRequest]) -> int:
        runner = entry.runner
        assert runner is not None
        added = await self._add(runner.job, requests)
        if added:
            with contextlib.suppress(ConfigError):
                runner.crawler.note_admitted(added)
        return added

    async def _add(self, job: JobInfo, requests: Sequence[NewRequest]) -> int:
        added = 0
        for start in range(0, len(requests), _ADMIT_BATCH):
            chunk = requests[start : start + _ADMIT_BATCH]
            added += await self.store.add_requests(job.id, chunk, now=time.time())
        return added

    async def _tick(self) -> None:
        """Publish every running job's progress once per interval."""
        while True:
            await asyncio.sleep(self._interval)
            for name, entry in list(self._live.items()):
                if entry.state != "running":
                    continue
                snapshot = self.snapshot(name)
                if snapshot is not None:
                    self.hub.publish_progress(name, progress_of(snapshot))


def progress_of(snapshot: StatsSnapshot) -> dict[str, object]:
    """A run's live numbers, as ``progress`` messages and the API show them."""
    rate = snapshot.finished_this_run / snapshot.elapsed if snapshot.elapsed > 0 else 0.0
    return {
        "total": snapshot.total,
        "finished": snapshot.finished,
        "done": snapshot.done,
        "failed": snapshot.failed,
        "retries": snapshot.retries,
        "in_flight": snapshot.in_flight,
        "queued": snapshot.queued,
        "bytes": snapshot.bytes,
        "pages_per_second": round(rate, 2),
        "elapsed": round(snapshot.elapsed, 3),
    }


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, ShoalError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


def with_processes(processes: int) -> Callable[[JobSpec], JobSpec]:
    """The service's fetching happens in its own process unless told otherwise."""

    def configure(spec: JobSpec) -> JobSpec:
        limits = replace(spec.config.limits, processes=processes)
        return replace(spec, config=replace(spec.config, limits=limits))

    return configure
