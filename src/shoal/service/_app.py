"""The FastAPI application of ``shoal serve``: routes, error mapping, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, cast

from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shoal.core.errors import ConfigError, InputError, JobConflict, ShoalError
from shoal.core.extract import ExtractRules
from shoal.core.inputs import MAX_LINE_BYTES, parse_line
from shoal.core.model import FetchResult, NewRequest
from shoal.core.ports import Store
from shoal.service._dashboard import mount_dashboard
from shoal.service._events import EventHub, HubLimits, TooSlow
from shoal.service._frames import sink_of
from shoal.service._guard import WS_PROTOCOL, BodyLimit, TokenGuard
from shoal.service._heap import ClientHeap
from shoal.service._jobs import (
    JobManager,
    JobView,
    NoSuchJob,
    ResultHook,
    ServiceConflict,
    SpecConflict,
    progress_of,
    with_processes,
)
from shoal.service._metrics import ServiceMetrics, TimedStore
from shoal.service._models import (
    NOT_FOUND,
    ConflictProblem,
    Counts,
    JobCreate,
    JobName,
    JobOut,
    JobsOut,
    LineError,
    Problem,
    UrlsAdded,
    Worker,
    invalid,
    spec_of,
)
from shoal.service._results import add_result_routes
from shoal.service._settings import ServiceSettings
from shoal.store import open_store

__all__ = ["create_app"]

_CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ConflictProblem}}


class _State:
    """What the routes share, made by the lifespan."""

    store: Store
    jobs: JobManager
    hub: EventHub
    heap: ClientHeap
    metrics: ServiceMetrics


def create_app(settings: ServiceSettings, *, store: Store | None = None) -> FastAPI:
    """The service as an ASGI app. Its lifespan opens the store (``settings.store``, or the
    open ``store`` given, which stays open), resumes the jobs that were running, and on
    shutdown stops every job gracefully."""
    state = _State()
    hub = EventHub(
        HubLimits(
            queue=settings.ws_queue,
            send_timeout=settings.ws_send_timeout,
            page_rate=settings.ws_page_rate,
        )
    )
    state.hub = hub
    state.heap = ClientHeap()

    def snapshots() -> dict[str, Any]:
        found = {}
        for name in state.jobs.running:
            snapshot = state.jobs.snapshot(name)
            if snapshot is not None:
                found[name] = snapshot
        return found

    state.metrics = ServiceMetrics(
        snapshots, lambda: dict(state.jobs.states()), lambda: hub.clients
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        own = store is None
        opened = store if store is not None else open_store(settings.store)
        if own:
            await opened.open()
        state.store = opened
        timed = cast(Store, TimedStore(opened, state.metrics.store_writes))
        try:
            async with contextlib.AsyncExitStack() as stack:
                on_results: ResultHook = state.metrics.record
                if settings.emit is not None:
                    on_results = await _emitting(settings.emit, on_results, stack)
                # Entered after the emitter, so left before it: every result of the jobs'
                # last batches is handed over, then confirmed before the emitter closes.
                state.jobs = await stack.enter_async_context(
                    JobManager(
                        timed,
                        hub,
                        max_jobs=settings.max_jobs,
                        progress_interval=settings.progress_interval,
                        configure=with_processes(settings.processes),
                        on_results=on_results,
                        block_private=not settings.allow_private,
                    )
                )
                yield
        finally:
            state.heap.close()
            if own:
                await opened.close()

    app = FastAPI(
        title="shoal",
        summary="Fetch and crawl jobs: create, watch, pause, export.",
        version=_version(),
        lifespan=lifespan,
    )
    app.state.shoal = state
    _errors(app)
    _routes(app, state, settings)
    _events(app, state, settings)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
        )
    mount_dashboard(app, token_required=settings.token is not None)
    if settings.token is not None:
        app.add_middleware(TokenGuard, token=settings.token)
    return app


async def _emitting(url: str, record: ResultHook, stack: contextlib.AsyncExitStack) -> ResultHook:
    """``--emit``: a result hook that also publishes every committed batch of every job
    to the broker (routing key: the job); when ``stack`` closes, what was handed over is
    confirmed."""
    from shoal.queue import ResultEmitter

    emitter = ResultEmitter(url)
    await emitter.open()
    stack.push_async_callback(emitter.close)

    def on_results(job: str, batch: Sequence[FetchResult]) -> None:
        record(job, batch)
        emitter.emit(job, batch)

    return on_results


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("shoal")
    except PackageNotFoundError:
        return "0"


def _errors(app: FastAPI) -> None:
    @app.exception_handler(NoSuchJob)
    async def not_found(_request: Request, exc: NoSuchJob) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(SpecConflict)
    async def spec_conflict(_request: Request, exc: SpecConflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "conflicts": list(exc.conflicts)}, 409)

    @app.exception_handler(JobConflict)
    async def job_conflict(_request: Request, exc: JobConflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "conflicts": []}, status_code=409)

    @app.exception_handler(ServiceConflict)
    async def conflict(_request: Request, exc: ServiceConflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "conflicts": []}, status_code=409)

    @app.exception_handler(ConfigError)
    async def bad_setting(_request: Request, exc: ConfigError) -> JSONResponse:
        return invalid(["body"], str(exc))

    @app.exception_handler(ShoalError)
    async def store_failed(_request: Request, exc: ShoalError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)


def _job_out(view: JobView, workers: list[Worker]) -> JobOut:
    job, counts, snapshot = view.job, view.counts, view.snapshot
    progress = progress_of(snapshot) if snapshot is not None else {}
    record = dict(job.config)
    return JobOut(
        name=job.name,
        kind=job.mode,
        state=view.state,
        desired=job.desired,
        counts=Counts(
            done=counts.done,
            failed=counts.failed,
            total=counts.total,
            finished=counts.finished,
            pending=counts.pending,
            leased=counts.leased,
            retry_wait=counts.retry_wait,
        ),
        by_status_class=dict(snapshot.by_status_class) if snapshot else {},
        by_error_kind=dict(snapshot.by_error_kind) if snapshot else {},
        pages_per_second=float(progress.get("pages_per_second", 0.0)),  # type: ignore[arg-type]
        in_flight=snapshot.in_flight if snapshot else 0,
        bytes=snapshot.bytes if snapshot else 0,
        created_at=job.created_at,
        started_at=view.started_at,
        finished_at=view.finished_at,
        error=view.error,
        notes=list(view.notes),
        spec=record,
        workers=workers,
    )


def _routes(app: FastAPI, state: _State, settings: ServiceSettings) -> None:
    async def full(view: JobView) -> JobOut:
        # The job as the API shows it has no latency percentiles: they are not worked out.
        summary = await state.store.summary(view.job.id, percentiles=False)
        workers = [
            Worker(
                owner=w.owner,
                pid=w.pid,
                hostname=w.hostname,
                started_at=w.started_at,
                heartbeat_at=w.heartbeat_at,
            )
            for w in await state.store.list_workers(view.job.id)
        ]
        out = _job_out(view, workers)
        out.by_status_class = dict(summary.by_status_class)
        out.by_error_kind = dict(summary.by_error_kind)
        out.bytes = summary.bytes
        return out

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, str]:
        """Whether the service is up (needs no token)."""
        return {"status": "ok"}

    @app.get("/metrics", tags=["service"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/jobs",
        status_code=201,
        tags=["jobs"],
        responses={
            200: {"model": JobOut, "description": "The same job existed: resumed"},
            409: {"model": ConflictProblem},
        },
    )
    async def create_job(body: JobCreate, response: Response) -> JobOut:
        """Create and start a job; the same name and settings again resumes it (200)."""
        if body.kind == "crawl" and not body.seeds:
            return invalid(["body", "seeds"], "a crawl needs at least one seed")  # type: ignore[return-value]
        if body.kind == "fetch" and body.seeds:
            return invalid(["body", "seeds"], "a fetch job takes urls, not seeds")  # type: ignore[return-value]
        if len(body.urls) > settings.max_urls_per_request:
            return invalid(  # type: ignore[return-value]
                ["body", "urls"], f"at most {settings.max_urls_per_request:,} URLs per request"
            )
        if body.extract:
            try:
                ExtractRules.of(body.extract)
            except ConfigError as exc:
                return invalid(["body", "extract"], str(exc))  # type: ignore[return-value]
        try:
            spec = spec_of(body)
        except InputError as exc:
            where: list[str | int] = ["body", "seeds"]
            if exc.line_no is not None:
                where.append(exc.line_no - 1)
            return invalid(where, exc.reason)  # type: ignore[return-value]
        requests: list[NewRequest] = []
        for index, url in enumerate(body.urls):
            try:
                request = parse_line(url, index + 1)
            except InputError as exc:
                return invalid(["body", "urls", index], exc.reason)  # type: ignore[return-value]
            if request is not None:
                requests.append(request)
        created = await state.jobs.create(body.name, spec, requests)
        if not created:
            response.status_code = 200
        return await full(await state.jobs.view(body.name))

    @app.get("/jobs", tags=["jobs"])
    async def list_jobs() -> JobsOut:
        """Every job in the store."""
        return JobsOut(jobs=[await full(view) for view in await state.jobs.views()])

    @app.get("/jobs/{name}", tags=["jobs"], responses=NOT_FOUND)
    async def get_job(name: JobName) -> JobOut:
        """One job: state, counts, rate, bytes, times, settings and workers."""
        return await full(await state.jobs.view(name))

    @app.delete("/jobs/{name}", status_code=204, tags=["jobs"], responses=NOT_FOUND)
    async def delete_job(name: JobName) -> Response:
        """Stop the job and remove it with all its rows."""
        await state.jobs.delete(name)
        return Response(status_code=204)

    def action(verb: str, run: Callable[[str], Any]) -> None:
        async def act(name: JobName) -> JobOut:
            await run(name)
            return await full(await state.jobs.view(name))

        act.__name__ = f"{verb}_job"
        act.__doc__ = {
            "pause": "Stop leasing; in-flight requests finish. Survives a restart.",
            "resume": "Run a paused (or stopped) job again.",
            "cancel": "Stop the job for good; what was recorded stays.",
        }[verb]
        app.post(f"/jobs/{{name}}/{verb}", tags=["jobs"], responses={**NOT_FOUND, **_CONFLICT})(act)

    action("pause", lambda n: state.jobs.pause(n))
    action("resume", lambda n: state.jobs.resume(n))
    action("cancel", lambda n: state.jobs.cancel(n))

    @app.post(
        "/jobs/{name}/urls",
        tags=["jobs"],
        responses={
            **NOT_FOUND,
            **_CONFLICT,
            413: {"model": Problem},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
            }
        },
    )
    async def add_urls(name: JobName, request: Request) -> UrlsAdded:
        """Add URLs to a fetch job: the body is lines as in a CLI input file (a URL, or a
        JSON object per line). Invalid lines are reported by number; the rest are added."""
        await state.jobs.job(name)  # 404 before reading the body
        report = UrlsAdded(lines=0, valid=0, added=0, invalid=0, errors=[])
        requests: list[NewRequest] = []
        buffer = b""
        limit = settings.max_urls_per_request

        def take(line: bytes) -> None:
            report.lines += 1
            try:
                if len(line) > MAX_LINE_BYTES:
                    raise InputError(f"line too long ({len(line):,} bytes)", line_no=report.lines)
                parsed = parse_line(line, report.lines)
            except InputError as exc:
                report.invalid += 1
                if len(report.errors) < 100:
                    report.errors.append(LineError(line=report.lines, error=exc.reason))
                return
            if parsed is not None:
                if len(requests) >= limit:
                    raise HTTPException(413, f"at most {limit:,} URLs per request")
                requests.append(parsed)

        async for chunk in request.stream():
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                take(line)
        if buffer:
            take(buffer)
        report.valid = len(requests)
        report.added = await state.jobs.add_urls(name, requests)
        return report

    add_result_routes(app, state)


def _events(app: FastAPI, state: _State, settings: ServiceSettings) -> None:
    async def follow(websocket: WebSocket, job: str | None) -> None:
        if job is not None and await state.store.get_job(job) is None:
            await websocket.close(code=1008, reason=f"no job {job!r}")
            return
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=WS_PROTOCOL if WS_PROTOCOL in offered else None)
        subscriber = state.hub.subscribe(job, sink_of(websocket.scope))
        state.heap.joined()
        try:
            for name, now in await state.jobs.states_now():
                if job is None or name == job:
                    subscriber.offer_state(json.dumps({"type": "state", "job": name, "state": now}))
            pump = asyncio.ensure_future(subscriber.pump(websocket.send_text))
            listen = asyncio.ensure_future(_listen(websocket, settings.max_ws_message_bytes))
            try:
                done, _ = await asyncio.wait({pump, listen}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (pump, listen):
                    task.cancel()
                await asyncio.wait({pump, listen})
            reason = _close_reason(pump)
            if reason is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(5):
                        await websocket.close(code=1008, reason=reason[:120])
            elif not listen.cancelled() and (code := listen.result()) is not None:
                with contextlib.suppress(Exception):
                    await websocket.close(code=code)
        finally:
            state.hub.unsubscribe(subscriber)
            state.heap.left()

    @app.websocket("/jobs/{name}/events")
    async def job_events(websocket: WebSocket, name: str) -> None:
        await follow(websocket, name)

    @app.websocket("/events")
    async def all_events(websocket: WebSocket) -> None:
        await follow(websocket, None)


def _close_reason(pump: asyncio.Future[None]) -> str | None:
    if pump.cancelled():
        return None
    exc = pump.exception()
    if isinstance(exc, TooSlow):
        return exc.reason
    return None


async def _listen(websocket: WebSocket, max_bytes: int) -> int | None:
    """Read (and ignore) what the client sends until it leaves (None), or until a message
    is over ``max_bytes`` (1009: the close code to send)."""
    while True:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        size = len(message.get("text") or "") + len(message.get("bytes") or b"")
        if size > max_bytes:
            return 1009
