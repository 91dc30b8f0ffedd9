"""How values are kept in a store's columns: compact JSON, zstd bodies, storable text.

Backend-neutral, so that every backend stores the same bytes for the same
value: JSON columns are NULL when the value is empty, headers are a JSON list
of ``[name, value]`` pairs, bodies are one zstd frame (level 3) with the
content size in its header.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import zstandard

from shoal.core.errors import ConfigError
from shoal.core.model import FetchResult, Header, Request, WorkerInfo
from shoal.core.revisit import Revisit

__all__ = [
    "HISTORY_COLUMNS",
    "RESULT_COLUMNS",
    "ZSTD_LEVEL",
    "compress",
    "decode_headers",
    "decode_json",
    "decompress",
    "encode_fields",
    "encode_json",
    "job_config_json",
    "request_from_row",
    "result_from_row",
    "storable",
    "workers_from_rows",
]

ZSTD_LEVEL = 3


def job_config_json(config: Mapping[str, object], *, name: str | None = None) -> str:
    """A job's settings as the ``config`` column keeps them: compact JSON, sorted keys."""
    try:
        return json.dumps(dict(config), separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError) as exc:
        job = f"job {name!r}: " if name else ""
        raise ConfigError(f"{job}config is not JSON-serializable: {exc}") from None


def _jsonable(value: object) -> object:
    """What JSON cannot hold in extracted fields is kept as text rather than failing a batch."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


# Prebuilt encoders: json.dumps(..., separators=...) would build one per call.
encode_json = json.JSONEncoder(separators=(",", ":")).encode
encode_fields = json.JSONEncoder(separators=(",", ":"), default=_jsonable).encode
decode_json = json.JSONDecoder().decode


def decode_headers(text: str | None) -> tuple[Header, ...]:
    if text is None:
        return ()
    return tuple((name, value) for name, value in decode_json(text))


_local = threading.local()


def compress(data: bytes) -> bytes:
    compressor: zstandard.ZstdCompressor | None = getattr(_local, "compressor", None)
    if compressor is None:
        # (De)compressor objects must not be shared between threads: one per thread.
        compressor = _local.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return compressor.compress(data)


def decompress(data: bytes) -> bytes:
    decompressor: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = _local.decompressor = zstandard.ZstdDecompressor()
    return decompressor.decompress(data)


def storable(text: str) -> str:
    """``text`` as valid UTF-8: lone surrogates (what decoding garbage with surrogateescape
    leaves behind) become U+FFFD, which every database accepts."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


# Rows as every backend selects them: the same columns in the same order.


def request_from_row(row: Any) -> Request:
    """A leased request from (id, url, host, method, headers, body, depth, parent_url,
    attempts, host_seq, suspect, crashes, revisit)."""
    return Request(
        id=row[0],
        url=row[1],
        host=row[2],
        method=row[3],
        headers=decode_headers(row[4]),
        body=row[5],
        depth=row[6],
        parent_url=row[7],
        attempts=row[8],
        suspect=row[10] != 0,
        crashes=row[11],
        revisit=None if row[12] is None else Revisit(*decode_json(row[12])),
    )


# The columns of a results row (table alias r) in the order result_from_row reads them;
# a query adds the compressed body (or NULL) after them.
RESULT_COLUMNS = """
    r.request_id, r.url, r.final_url, r.redirects, r.status, r.error_kind, r.error, r.headers,
    r.content_type, r.bytes, r.body_hash, r.attempts, r.ttfb_ms, r.elapsed_ms, r.fetched_at,
    r.depth, r.parent_url, r.method, r.fields, r.encoding, r.proxy, r.etag, r.last_modified
"""


# A results row's columns as a recrawl copies them to the history table (same names).
HISTORY_COLUMNS = """
    request_id, job_id, url, final_url, redirects, status, error_kind, error, headers,
    content_type, bytes, body_hash, attempts, ttfb_ms, elapsed_ms, fetched_at, depth,
    parent_url, method, fields, encoding, proxy, etag, last_modified
"""


def result_from_row(row: Any) -> FetchResult:
    """A result from ``RESULT_COLUMNS`` then the compressed body or NULL."""
    dec = decode_json
    return FetchResult(
        request_id=row[0],
        url=row[1],
        final_url=row[2],
        redirects=() if row[3] is None else tuple(dec(row[3])),
        status=row[4],
        error_kind=row[5],
        error=row[6],
        headers=decode_headers(row[7]),
        content_type=row[8],
        bytes=row[9],
        body_hash=row[10],
        body=None if row[23] is None else decompress(row[23]),
        attempts=row[11],
        ttfb_ms=row[12],
        elapsed_ms=row[13],
        fetched_at=row[14],
        depth=row[15],
        parent_url=row[16],
        method=row[17],
        fields=None if row[18] is None else dec(row[18]),
        encoding=row[19],
        proxy=row[20],
        etag=row[21],
        last_modified=row[22],
    )


def workers_from_rows(rows: Iterable[Any]) -> list[WorkerInfo]:
    """Workers from (owner, pid, hostname, started_at, heartbeat_at) rows."""
    return [
        WorkerInfo(owner=o, pid=p, hostname=h, started_at=s, heartbeat_at=b)
        for o, p, h, s, b in rows
    ]
