"""One result as a flat record: the columns every export format shares, in a stable order.

Extracted fields are in ``fields`` (an object: JSON text in CSV). When the job
has extraction rules, CSV also gets one column per rule after these, named
``fields.NAME`` in rule order (``field_columns``), and Parquet types ``fields``
as a struct of the rules.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from shoal.core.charset import codec_for, decode, media_type
from shoal.core.extract import ExtractRules
from shoal.core.model import FetchResult

__all__ = [
    "COLUMNS",
    "body_text",
    "field_columns",
    "rules_of_job",
    "scalar_text",
    "to_record",
    "utf8_text",
]

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
    "encoding",
    "proxy",
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
        "encoding": result.encoding,
        "proxy": result.proxy,
    }


_TEXT_TYPES = ("text/", "+xml", "/xml", "+json", "/json", "javascript", "ecmascript")


def body_text(result: FetchResult) -> str | None:
    """The saved body as text, decoded with the encoding recorded when the page was
    decoded (else one chosen now, as the crawler chooses it); None without a body or
    for a body that is not text (images, archives...)."""
    body = result.body
    if body is None:
        return None
    kind = media_type(result.content_type)[0] if result.content_type else ""
    if kind and not any(marker in kind for marker in _TEXT_TYPES):
        return None
    codec = codec_for(result.encoding) if result.encoding else None
    if codec is None:
        return decode(body, result.content_type).text
    return body.decode(codec, "replace")


def utf8_text(text: str) -> str:
    """``text`` as valid UTF-8 for a format that insists on it: a lone surrogate (left in
    values recorded by older versions) becomes a backslash escape."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def field_columns(rules: ExtractRules | None) -> tuple[str, ...]:
    """The per-field columns of a job with these rules: ``fields.NAME``, in rule order."""
    return () if rules is None else tuple(f"fields.{name}" for name in rules.names)


def scalar_text(value: object) -> str | None:
    """A field value as one text cell: strings as they are, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def rules_of_job(config: dict[str, Any]) -> ExtractRules | None:
    """The extraction rules a job recorded in its config (``CrawlConfig.as_record``)."""
    recorded = config.get("extract")
    if not isinstance(recorded, list) or not recorded:
        return None
    return ExtractRules.of([str(rule) for rule in recorded])
