"""The data model shared by the engine, the stores and the exports."""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shoal.core.charset import codec_for, decode
from shoal.core.pickling import pickled_by_values
from shoal.core.urls import canonical_fingerprint, canonical_host, split_userinfo

if TYPE_CHECKING:
    from shoal.core.revisit import Change, Revisit

__all__ = [
    "Completion",
    "FetchResult",
    "FoundRequest",
    "Header",
    "JobCounts",
    "JobInfo",
    "HostView",
    "JobSummary",
    "NewRequest",
    "Request",
    "RetryUpdate",
    "WorkerInfo",
    "job_name",
]

Header = tuple[str, str]


@pickled_by_values
@dataclass(frozen=True, slots=True, kw_only=True)
class NewRequest:
    """A request about to be admitted to a job's frontier.

    ``fingerprint`` identifies it within the job: a second request with the
    same fingerprint is a duplicate and is not admitted.
    """

    url: str
    fingerprint: bytes
    host: str
    method: str = "GET"
    headers: tuple[Header, ...] = ()
    body: bytes | None = None
    depth: int = 0
    parent_url: str | None = None

    @classmethod
    def for_url(cls, url: str, *, depth: int = 0, parent_url: str | None = None) -> NewRequest:
        """A GET of ``url``, which must already be canonical (seeds, links, sitemap entries).

        Credentials in the URL (``user:pass@``) are dropped: what a page links to is
        fetched without them (a seed's own are kept as a header: ``core.secrets``)."""
        if "@" in url:
            url = split_userinfo(url)[0]
        return cls(
            url=url,
            fingerprint=canonical_fingerprint(url),
            host=canonical_host(url),
            depth=depth,
            parent_url=parent_url,
        )


@pickled_by_values
@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """A frontier row leased to a worker; ``attempts`` counts earlier tries.

    ``suspect`` is set when a worker that held the row stopped (killed, crashed) before
    finishing it: the row may be what killed it. ``crashes`` counts the deaths of processes
    that had durably marked the row as being fetched (``Store.mark_started``).
    ``revisit``: a recrawl's row, with what its current result remembers
    (``shoal.core.revisit``); None for a first fetch.
    """

    id: int
    url: str
    host: str
    method: str = "GET"
    headers: tuple[Header, ...] = ()
    body: bytes | None = None
    depth: int = 0
    parent_url: str | None = None
    attempts: int = 0
    suspect: bool = False
    crashes: int = 0
    revisit: Revisit | None = None


@pickled_by_values
@dataclass(slots=True, kw_only=True)
class FetchResult:
    """The recorded outcome of one request: a response, or why there is none.

    ``status`` is ``None`` when no response arrived; ``error_kind`` is set when
    there was a transport failure or a policy outcome (``too_large`` keeps the
    status). Times are milliseconds; ``fetched_at`` is Unix seconds.
    """

    request_id: int
    url: str
    final_url: str | None = None
    redirects: tuple[str, ...] = ()
    status: int | None = None
    error_kind: str | None = None
    error: str | None = None
    headers: tuple[Header, ...] = ()
    content_type: str | None = None
    bytes: int = 0
    body_hash: str | None = None
    body: builtins.bytes | None = None
    attempts: int = 1
    ttfb_ms: float | None = None
    elapsed_ms: float | None = None
    fetched_at: float = 0.0
    depth: int = 0
    parent_url: str | None = None
    method: str = "GET"
    fields: dict[str, object] | None = None
    encoding: str | None = None
    """The text encoding the page was decoded with, when it was decoded (extraction, links)."""
    proxy: str | None = None
    """The proxy the request went through, without credentials (None: direct, or the proxy
    environment variables chose)."""
    etag: str | None = None
    """The response's ``ETag`` (a recrawl sends it back as ``If-None-Match``)."""
    last_modified: str | None = None
    """The response's ``Last-Modified`` (sent back as ``If-Modified-Since``)."""
    change: Change | None = None
    """What a recrawl found (``shoal.core.revisit``); None for a first fetch."""

    @property
    def failed(self) -> bool:
        """True when the request ends as ``failed`` rather than ``done``."""
        return self.status is None

    @property
    def text(self) -> str | None:
        """The body as text (None without a body): decoded with ``encoding`` when the page
        was decoded already, else by its byte-order mark, ``Content-Type``, ``<meta>``
        charset or detection; bytes that do not decode become U+FFFD."""
        body = self.body
        if body is None:
            return None
        codec = codec_for(self.encoding) if self.encoding else None
        if codec is not None:
            try:
                return body.decode(codec, "replace")
            except (LookupError, ValueError, UnicodeError):
                pass
        return decode(body, self.content_type).text


@dataclass(frozen=True, slots=True, kw_only=True)
class FoundRequest:
    """A request a job admitted, looked up by fingerprint: its row id, and its result
    once it has one."""

    id: int
    result: FetchResult | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryUpdate:
    """A leased request that failed an attempt and waits until ``next_at``."""

    request_id: int
    attempts: int
    next_at: float
    error_kind: str | None
    error: str | None


@dataclass(slots=True, kw_only=True)
class Completion:
    """What a worker hands back to the store in one transaction.

    ``counters`` are the engine's own rejections since the last batch, by reason
    (``{"out_of_scope": 12, "url_too_long": 3}``); the store adds them to the job's
    totals. ``len()`` does not count them.
    """

    results: list[FetchResult] = field(default_factory=list)
    retries: list[RetryUpdate] = field(default_factory=list)
    discovered: list[NewRequest] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.results) + len(self.retries) + len(self.discovered) + len(self.released)


_NOT_IN_JOB_NAMES = re.compile(r"[^A-Za-z0-9_.-]+")


def job_name(text: str, *, default: str = "job") -> str:
    """A job name made from ``text`` (a file name, a host): runs of other characters
    become ``-``."""
    return _NOT_IN_JOB_NAMES.sub("-", text) or default


@dataclass(frozen=True, slots=True, kw_only=True)
class JobInfo:
    id: int
    name: str
    mode: str
    created_at: float
    config: dict[str, object] = field(default_factory=dict)
    desired: str | None = None
    """What an operator asked of the job (``running``, ``paused``, ``cancelled``), or None."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobCounts:
    """How many of a job's requests are in each lifecycle state."""

    pending: int = 0
    leased: int = 0
    retry_wait: int = 0
    done: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.leased + self.retry_wait + self.done + self.failed

    @property
    def open(self) -> int:
        return self.pending + self.leased + self.retry_wait

    @property
    def finished(self) -> int:
        return self.done + self.failed


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    """A process working on a job, as registered in the store."""

    owner: str
    pid: int
    hostname: str
    started_at: float
    heartbeat_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSummary:
    """What a finished (or running) job amounts to, computed by the store.

    ``rejected`` counts URLs never admitted, by reason: the engine's (``out_of_scope``,
    ...) and the store's admission limits (``max_pages``, ``host_page_limit``).
    """

    counts: JobCounts
    by_status_class: dict[str, int]
    by_error_kind: dict[str, int]
    bytes: int
    p50_ms: float | None
    p95_ms: float | None
    first_fetched_at: float | None
    last_fetched_at: float | None
    rejected: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class HostView:
    """One host of a job as the store sees it: its rows by state, the spacing between its
    request starts (``delay``, seconds), whether its robots.txt is cached, and which
    worker owns it now (None: nobody)."""

    host: str
    done: int
    failed: int
    waiting: int
    leased: int
    delay: float
    robots_cached: bool
    owner: str | None
