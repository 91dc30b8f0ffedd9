"""One result as a flat record: the columns every export format shares, in a stable order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shoal.core.model import FetchResult

__all__ = ["COLUMNS", "to_record"]

# Stable column order; append new columns at the end, never reorder.
COLUMNS: tuple[str, ...] = (
    "url",
    "final_url",
    "status",
    "error_kind",
    "error",
    "depth",
    "parent_url",
    "content_type",
    "bytes",
    "attempts",
    "elapsed_ms",
    "ttfb_ms",
    "fetched_at",
    "method",
    "redirects",
    "body_hash",
    "headers",
    "fields",
)


def iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_record(result: FetchResult) -> dict[str, Any]:
    """The JSON-ready record of one result (``headers`` as [name, value] pairs)."""
    return {
        "url": result.url,
        "final_url": result.final_url,
        "status": result.status,
        "error_kind": result.error_kind,
        "error": result.error,
        "depth": result.depth,
        "parent_url": result.parent_url,
        "content_type": result.content_type,
        "bytes": result.bytes,
        "attempts": result.attempts,
        "elapsed_ms": None if result.elapsed_ms is None else round(result.elapsed_ms, 3),
        "ttfb_ms": None if result.ttfb_ms is None else round(result.ttfb_ms, 3),
        "fetched_at": iso_utc(result.fetched_at),
        "method": result.method,
        "redirects": list(result.redirects),
        "body_hash": result.body_hash,
        "headers": [list(h) for h in result.headers],
        "fields": result.fields,
    }
