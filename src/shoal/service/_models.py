"""The API's request and response bodies (pydantic), and how a request becomes a JobSpec.

A job's fields are the CLI options' names with underscores; defaults are the CLI's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from shoal.core.config import CrawlConfig, Limits, Politeness, RetryPolicy, Timeouts
from shoal.core.extract import ExtractRules
from shoal.core.jobspec import MAX_COUNT, MAX_DEPTH, JobSpec

__all__ = [
    "NOT_FOUND",
    "JobName",
    "JobCreate",
    "JobOut",
    "HostOut",
    "JobsOut",
    "ResultOut",
    "ResultsPage",
    "UrlsAdded",
    "invalid",
    "spec_of",
]

_LIMITS, _TIMEOUTS, _POLITE, _RETRY = Limits(), Timeouts(), Politeness(), RetryPolicy()
_CONFIG = CrawlConfig()

JOB_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"

JobName = Annotated[str, Path(pattern=JOB_NAME, max_length=100)]

_Url = Field(min_length=1, max_length=8192)


class JobCreate(BaseModel):
    """A job to create: a ``crawl`` from ``seeds``, or a ``fetch`` of ``urls``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=JOB_NAME, description="The job's name: letters, digits, _ . -")
    kind: Literal["fetch", "crawl"]
    seeds: list[str] = Field(default_factory=list, max_length=1000)
    urls: list[str] = Field(default_factory=list, max_length=10_000)
    depth: int | None = Field(default=None, ge=0, le=MAX_DEPTH)
    scope: Literal["host", "domain", "prefix", "any"] = "host"
    include: list[str] = Field(default_factory=list, max_length=100)
    exclude: list[str] = Field(default_factory=list, max_length=100)
    strip_query_params: list[str] = Field(default_factory=list, max_length=100)
    sort_query: bool = False
    max_pages: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    max_pages_per_host: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    robots: bool = True
    sitemaps: bool = False
    autothrottle: bool = False
    concurrency: int = Field(default=_LIMITS.concurrency, ge=1, le=10_000)
    per_host: int = Field(default=_POLITE.per_host, ge=1, le=1000)
    delay: float = Field(default=_POLITE.delay, ge=0, le=3600)
    timeout: float = Field(default=_TIMEOUTS.total, gt=0, le=3600)
    connect_timeout: float = Field(default=_TIMEOUTS.connect, gt=0, le=3600)
    read_timeout: float = Field(default=_TIMEOUTS.read, gt=0, le=3600)
    retries: int = Field(default=_RETRY.retries, ge=0, le=100)
    max_bytes: int = Field(default=_LIMITS.max_bytes, ge=1, le=2**40)
    max_redirects: int = Field(default=_LIMITS.max_redirects, ge=0, le=100)
    user_agent: str = Field(default=_CONFIG.user_agent, min_length=1, max_length=1000)
    save_bodies: bool = False
    insecure: bool = False
    extract: dict[str, str] = Field(
        default_factory=dict,
        max_length=50,
        description='Extraction rules by field name: {"title": "css:title::text"}',
    )


class Counts(BaseModel):
    done: int
    failed: int
    total: int
    finished: int
    pending: int
    leased: int
    retry_wait: int


class Worker(BaseModel):
    owner: str
    pid: int
    hostname: str
    started_at: float
    heartbeat_at: float


class JobOut(BaseModel):
    name: str
    kind: str
    state: Literal["queued", "running", "paused", "finished", "cancelled", "failed"]
    desired: str | None
    counts: Counts
    by_status_class: dict[str, int]
    by_error_kind: dict[str, int]
    pages_per_second: float
    in_flight: int
    bytes: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    notes: list[str]
    spec: dict[str, Any]
    workers: list[Worker]


class HostOut(BaseModel):
    host: str
    done: int
    failed: int
    waiting: int
    leased: int = Field(description="Rows a worker holds: in flight or about to be")
    delay: float = Field(description="Seconds between request starts to this host")
    robots: Literal["cached", "not fetched"]
    owner: str | None


class JobsOut(BaseModel):
    jobs: list[JobOut]


class ResultOut(BaseModel):
    id: int
    url: str
    final_url: str | None
    redirects: list[str]
    status: int | None
    error_kind: str | None
    error: str | None
    content_type: str | None
    bytes: int
    body_hash: str | None
    attempts: int
    ttfb_ms: float | None
    elapsed_ms: float | None
    fetched_at: float
    depth: int
    parent_url: str | None
    method: str
    encoding: str | None
    headers: list[list[str]]
    fields: dict[str, Any] | None


class ResultsPage(BaseModel):
    results: list[ResultOut]
    next_after: int | None = Field(
        description="Pass as ``after`` for the next page; null on the last page."
    )


class LineError(BaseModel):
    line: int
    error: str


class UrlsAdded(BaseModel):
    lines: int
    valid: int
    added: int
    invalid: int
    errors: list[LineError]


class Problem(BaseModel):
    detail: str


class ConflictProblem(BaseModel):
    detail: str
    conflicts: list[str]


def spec_of(body: JobCreate) -> JobSpec:
    """The JobSpec a request asks for. Raises ``ConfigError`` or ``InputError``."""
    config = CrawlConfig(
        limits=Limits(
            concurrency=body.concurrency,
            max_bytes=body.max_bytes,
            max_redirects=body.max_redirects,
        ),
        timeouts=Timeouts(total=body.timeout, connect=body.connect_timeout, read=body.read_timeout),
        politeness=Politeness(per_host=body.per_host, delay=body.delay),
        retry=RetryPolicy(retries=body.retries),
        user_agent=body.user_agent,
        save_bodies=body.save_bodies,
        verify_tls=not body.insecure,
        extract=ExtractRules.of(body.extract) if body.extract else None,
    )
    if body.kind == "fetch":
        return JobSpec.fetch(input="api", config=config)
    return JobSpec.crawl(
        body.seeds,
        config=config,
        scope=body.scope,
        include=tuple(body.include),
        exclude=tuple(body.exclude),
        strip_query_params=tuple(body.strip_query_params),
        sort_query=body.sort_query,
        depth=body.depth,
        max_pages=body.max_pages,
        max_pages_per_host=body.max_pages_per_host,
        robots=body.robots,
        sitemaps=body.sitemaps,
        autothrottle=body.autothrottle,
    )


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}


def invalid(loc: list[str | int], message: str) -> JSONResponse:
    """A 422 shaped as FastAPI's own validation errors."""
    return JSONResponse(
        {"detail": [{"loc": loc, "msg": message, "type": "value_error"}]}, status_code=422
    )
