"""Reading a job's results over HTTP: pages of results, one result, a saved body, the
busiest hosts, and an export of every result in one file."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from typing import Annotated, Literal, Protocol

from fastapi import FastAPI, Path, Query
from fastapi.responses import Response, StreamingResponse

from shoal.core.errors import ConfigError
from shoal.core.filters import ResultFilter, parse_statuses
from shoal.core.jobspec import JobSpec
from shoal.core.kinds import ErrorKind
from shoal.core.model import FetchResult
from shoal.core.ports import Store
from shoal.export.writers import FORMATS, open_writer
from shoal.service._jobs import JobManager, NoSuchJob
from shoal.service._models import NOT_FOUND, HostOut, JobName, ResultOut, ResultsPage, invalid

__all__ = ["add_result_routes"]

_CONTENT_TYPES = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "warc": "application/warc",
}
_SUFFIXES = {"jsonl": ".jsonl", "csv": ".csv", "parquet": ".parquet", "warc": ".warc.gz"}
_EXPORT_CHUNK = 256 * 1024


class _Service(Protocol):
    """What the routes read: set by the app's lifespan, after the routes are added."""

    store: Store
    jobs: JobManager


def _result_out(result: FetchResult) -> ResultOut:
    return ResultOut(
        id=result.request_id,
        url=result.url,
        final_url=result.final_url,
        redirects=list(result.redirects),
        status=result.status,
        error_kind=result.error_kind,
        error=result.error,
        content_type=result.content_type,
        bytes=result.bytes,
        body_hash=result.body_hash,
        attempts=result.attempts,
        ttfb_ms=result.ttfb_ms,
        elapsed_ms=result.elapsed_ms,
        fetched_at=result.fetched_at,
        depth=result.depth,
        parent_url=result.parent_url,
        method=result.method,
        encoding=result.encoding,
        headers=[list(h) for h in result.headers],
        fields=result.fields,
    )


async def _first_batch(
    store: Store, job_id: int, *, limit: int, after: int, where: ResultFilter | None = None
) -> list[FetchResult]:
    """The job's first ``limit`` results (matching ``where``) with ids after ``after``."""
    pages = store.iter_results(job_id, batch_size=limit, where=where, after=after)
    try:
        batch: list[FetchResult] = await anext(pages, [])
    finally:
        await pages.aclose()  # type: ignore[attr-defined]
    return batch


def add_result_routes(app: FastAPI, state: _Service) -> None:
    async def one_result(name: str, result_id: int) -> FetchResult:
        job = await state.jobs.job(name)
        batch = await _first_batch(state.store, job.id, limit=1, after=result_id - 1)
        if not batch or batch[0].request_id != result_id:
            raise NoSuchJob(f"no result {result_id} in job {name!r}")
        return batch[0]

    @app.get("/jobs/{name}/results", tags=["results"], responses=NOT_FOUND)
    async def results(
        name: JobName,
        after: Annotated[int, Query(ge=-1, le=2**62, description="The last id seen")] = -1,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        status: Annotated[
            str | None, Query(max_length=200, description="Classes or codes: 2xx,404")
        ] = None,
        error_kind: Annotated[list[ErrorKind] | None, Query()] = None,
        failed: Annotated[
            bool, Query(description="Only what went wrong: an error kind or a status ≥ 400")
        ] = False,
    ) -> ResultsPage:
        """Results in id order, a page at a time: pass the page's ``next_after`` as
        ``after`` for the next one."""
        job = await state.jobs.job(name)
        where = None
        if status is not None or error_kind or failed:
            try:
                classes, codes = parse_statuses(status) if status is not None else ((), ())
            except ConfigError as exc:
                return invalid(["query", "status"], str(exc))  # type: ignore[return-value]
            where = ResultFilter(
                status_classes=classes,
                statuses=codes,
                error_kinds=tuple(kind.value for kind in error_kind or ()),
                failed=failed,
            )
        batch = await _first_batch(state.store, job.id, limit=limit, after=after, where=where)
        return ResultsPage(
            results=[_result_out(r) for r in batch],
            next_after=batch[-1].request_id if len(batch) == limit else None,
        )

    @app.get("/jobs/{name}/hosts", tags=["jobs"], responses=NOT_FOUND)
    async def hosts(
        name: JobName, limit: Annotated[int, Query(ge=1, le=1000)] = 50
    ) -> list[HostOut]:
        """The job's busiest hosts: rows by state, pacing, robots.txt, owner."""
        job = await state.jobs.job(name)
        return [
            HostOut(
                host=view.host,
                done=view.done,
                failed=view.failed,
                waiting=view.waiting,
                leased=view.leased,
                delay=view.delay,
                robots="cached" if view.robots_cached else "not fetched",
                owner=view.owner,
            )
            for view in await state.store.hosts(job.id, limit=limit)
        ]

    @app.get("/jobs/{name}/results/{result_id}", tags=["results"], responses=NOT_FOUND)
    async def result(name: JobName, result_id: Annotated[int, Path(ge=0, le=2**62)]) -> ResultOut:
        """One result, as the results list shows it."""
        return _result_out(await one_result(name, result_id))

    @app.get(
        "/jobs/{name}/results/{result_id}/body",
        tags=["results"],
        response_class=Response,
        responses={**NOT_FOUND, 200: {"content": {"application/octet-stream": {}}}},
    )
    async def body(name: JobName, result_id: Annotated[int, Path(ge=0, le=2**62)]) -> Response:
        """A result's saved body (jobs with ``save_bodies``), as a download."""
        result = await one_result(name, result_id)
        data = await state.store.get_body(result.body_hash) if result.body_hash else None
        if data is None:
            raise NoSuchJob(f"result {result_id} of job {name!r} has no saved body")
        return Response(
            data,
            media_type="application/octet-stream",
            headers={
                # A crawled page is never rendered on the API's origin.
                "Content-Disposition": f'attachment; filename="{result_id}"',
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox",
                "X-Shoal-Content-Type": (result.content_type or "")[:200],
            },
        )

    @app.get(
        "/jobs/{name}/export",
        tags=["results"],
        response_class=StreamingResponse,
        responses={**NOT_FOUND, 200: {"content": {t: {} for t in _CONTENT_TYPES.values()}}},
    )
    async def export(
        name: JobName,
        format: Annotated[Literal["jsonl", "csv", "parquet", "warc"], Query()] = "jsonl",
    ) -> StreamingResponse:
        """Every result of the job in one file, written to disk and streamed from there."""
        job = await state.jobs.job(name)
        assert format in FORMATS
        spec = JobSpec.from_record(job.mode, job.config)
        folder = await asyncio.to_thread(tempfile.mkdtemp, prefix="shoal-export-")
        path = os.path.join(folder, f"{job.name}{_SUFFIXES[format]}")
        try:
            writer = await asyncio.to_thread(open_writer, path, format, extract=spec.config.extract)
            async for batch in state.store.iter_results(job.id, with_bodies=format == "warc"):
                await asyncio.to_thread(writer.write, batch)
            await asyncio.to_thread(writer.close)
            stream = await asyncio.to_thread(open, path, "rb")
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)
            raise

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while data := await asyncio.to_thread(stream.read, _EXPORT_CHUNK):
                    yield data
            finally:
                await asyncio.to_thread(stream.close)
                await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)

        return StreamingResponse(
            chunks(),
            media_type=_CONTENT_TYPES[format],
            headers={"Content-Disposition": f'attachment; filename="{os.path.basename(path)}"'},
        )
