"""What travels on the queues: request messages in, result messages out.

A request message's body is one JSON object, either a fetch order::

    {"url": "https://api.example.com/items?page=2", "method": "POST",
     "headers": {"Accept": "application/json"}, "body": "...",
     "job": "harvest", "meta": {"anything": "passed through"}}

(the fields of a JSON line of ``shoal fetch`` input, checked the same way,
plus the ``job`` to record it in and an opaque ``meta`` echoed in the
result), or a crawl order, ``{"crawl": {"seeds": [...], ...}, "job"?,
"meta"?}``. Anything else is poison: ``parse_order`` raises ``InputError``
with the reason the dead-letter queue records.

A result message is the job's JSONL row for the URL (``export.records``) plus
``job``, ``meta`` and ``request_id``: the request message's ``message_id``,
or, when it had none, a hash of its body, so a redelivered request is
answered under the same id (consumers dedupe by it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import xxhash

from shoal.core.errors import ConfigError, InputError
from shoal.core.inputs import MAX_LINE_BYTES, request_from_object
from shoal.core.jobspec import JobSpec
from shoal.core.model import FetchResult, NewRequest
from shoal.export.records import to_record

__all__ = [
    "MAX_MESSAGE_BYTES",
    "CrawlOrder",
    "RequestOrder",
    "parse_order",
    "request_id_of",
    "result_body",
]

MAX_MESSAGE_BYTES = MAX_LINE_BYTES
"""The largest request message accepted: the longest ``shoal fetch`` input line."""

_CRAWL_KEYS = frozenset(
    {
        "seeds",
        "scope",
        "include",
        "exclude",
        "strip_query_params",
        "sort_query",
        "depth",
        "max_pages",
        "max_pages_per_host",
        "robots",
        "sitemaps",
    }
)
_MAX_JOB_NAME = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestOrder:
    """Fetch one request into ``job`` (None: the worker's default job)."""

    request: NewRequest
    job: str | None = None
    meta: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CrawlOrder:
    """Crawl from ``settings`` (JobSpec fields: ``seeds``, ``depth``, ``scope``...)."""

    settings: Mapping[str, Any]
    job: str | None = None
    meta: Any = None

    def spec(self, template: JobSpec) -> JobSpec:
        """The crawl's spec, with the request settings (``config``) of ``template``.
        Raises ``InputError`` for settings a crawl cannot take."""
        settings = dict(self.settings)
        seeds = settings.pop("seeds", None)
        for name in ("include", "exclude", "strip_query_params"):
            if isinstance(settings.get(name), list):
                settings[name] = tuple(settings[name])
        if not isinstance(seeds, list) or not seeds:
            raise InputError("a crawl order needs 'seeds', a list of URLs")
        try:
            return JobSpec.crawl(seeds, config=template.config, **settings)
        except ConfigError as exc:
            raise InputError(f"crawl order: {exc}") from None
        except InputError as exc:
            raise InputError(f"crawl order: seed {exc.line_no}: {exc.reason}") from None


def parse_order(body: bytes) -> RequestOrder | CrawlOrder:
    """The order a request message carries; raises ``InputError`` (poison) with why not."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise InputError(f"message too large ({len(body):,} bytes, max {MAX_MESSAGE_BYTES:,})")
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not JSON: {exc}") from None
    except RecursionError:
        raise InputError("not JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise InputError("a request message must be a JSON object")
    job = obj.pop("job", None)
    meta = obj.pop("meta", None)
    if job is not None and (
        not isinstance(job, str) or not job.strip() or len(job) > _MAX_JOB_NAME
    ):
        raise InputError(f"'job' must be a non-empty name of at most {_MAX_JOB_NAME} characters")
    if "crawl" in obj:
        settings = obj.pop("crawl")
        if obj:
            raise InputError(f"unknown key {sorted(obj)[0]!r} beside 'crawl'")
        if not isinstance(settings, dict):
            raise InputError("'crawl' must be an object of crawl settings")
        unknown = sorted(set(settings) - _CRAWL_KEYS)
        if unknown:
            raise InputError(f"crawl order: unknown setting {unknown[0]!r}")
        return CrawlOrder(settings=settings, job=job, meta=meta)
    if "url" not in obj:
        raise InputError("missing 'url'")
    return RequestOrder(request=request_from_object(obj), job=job, meta=meta)


def request_id_of(message_id: str | None, body: bytes) -> str:
    """The id results of this request carry: its ``message_id``, else its body's hash."""
    if message_id:
        return message_id
    return xxhash.xxh3_128_hexdigest(body)


def result_body(result: FetchResult, *, job: str, meta: Any, request_id: str) -> bytes:
    """A result message: the JSONL row, with ``job``, ``meta`` and ``request_id``."""
    record = to_record(result)
    record["job"] = job
    record["meta"] = meta
    record["request_id"] = request_id
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str).encode()
