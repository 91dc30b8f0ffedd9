"""Parquet export: the shared columns with real types, written in bounded row groups.

``fields`` is JSON text, unless the job has extraction rules: then it is a
struct with one child per rule, in rule order — a string, or a list of strings
for a rule that collects (``[]``) — and ``noindex`` (bool). ``json:`` values
that are not strings are kept as JSON text.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from shoal.core.errors import ConfigError
from shoal.core.extract import ExtractRules
from shoal.core.model import FetchResult
from shoal.export.outfile import OutputFile
from shoal.export.records import COLUMNS, scalar_text, utf8_text

__all__ = ["ROW_GROUP_SIZE", "SCHEMA", "ParquetWriter", "schema_for"]

# Rows held in memory before they are written out as one row group.
ROW_GROUP_SIZE = 50_000

_HEADER = pa.struct([pa.field("name", pa.string()), pa.field("value", pa.string())])

SCHEMA = pa.schema(
    [
        pa.field("url", pa.string(), nullable=False),
        pa.field("final_url", pa.string()),
        pa.field("status", pa.int32()),
        pa.field("error_kind", pa.string()),
        pa.field("error", pa.string()),
        pa.field("depth", pa.int32(), nullable=False),
        pa.field("parent_url", pa.string()),
        pa.field("content_type", pa.string()),
        pa.field("bytes", pa.int64(), nullable=False),
        pa.field("attempts", pa.int32(), nullable=False),
        pa.field("elapsed_ms", pa.float64()),
        pa.field("ttfb_ms", pa.float64()),
        pa.field("fetched_at", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("redirects", pa.list_(pa.string())),
        pa.field("body_hash", pa.string()),
        pa.field("headers", pa.list_(_HEADER)),
        pa.field("fields", pa.string()),  # JSON text; a struct with extraction rules
        pa.field("encoding", pa.string()),
        pa.field("proxy", pa.string()),
    ]
)
assert tuple(SCHEMA.names) == COLUMNS


def schema_for(extract: ExtractRules | None) -> Any:
    """``SCHEMA``, with ``fields`` typed by the job's extraction rules when it has any."""
    if extract is None:
        return SCHEMA
    children = [
        pa.field(rule.name, pa.list_(pa.string()) if rule.many else pa.string())
        for rule in extract.rules
    ]
    children.append(pa.field("noindex", pa.bool_()))
    index = SCHEMA.get_field_index("fields")
    return SCHEMA.set(index, pa.field("fields", pa.struct(children)))


class ParquetWriter:
    """Write results to ``path`` as Parquet; visible under that name only after ``close``."""

    def __init__(
        self,
        path: str,
        *,
        row_group_size: int = ROW_GROUP_SIZE,
        extract: ExtractRules | None = None,
    ) -> None:
        if path == "-":
            raise ConfigError("cannot write Parquet to standard output; name a file")
        if row_group_size < 1:
            raise ConfigError("row_group_size must be at least 1")
        self._out = OutputFile(path)
        self._row_group_size = row_group_size
        self._schema = schema_for(extract)
        self._extract = extract
        # Each written batch is converted to Arrow at once (compact, off the Python heap)
        # and held here until a full row group can be written.
        self._pending: list[Any] = []
        self._pending_rows = 0
        with self._out.writing():
            self._writer = pq.ParquetWriter(self._out.file, self._schema, compression="zstd")

    def write(self, results: Sequence[FetchResult]) -> None:
        if not results:
            return
        columns = _columns(results)
        if self._extract is not None:
            columns["fields"] = [_typed_fields(r.fields, self._extract) for r in results]
        batch = pa.RecordBatch.from_pydict(columns, schema=self._schema)
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= self._row_group_size:
            with self._out.writing():
                self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        if not self._pending_rows:
            return
        table = pa.Table.from_batches(self._pending, schema=self._schema)
        size = self._row_group_size
        full = table.num_rows if final else table.num_rows - table.num_rows % size
        for start in range(0, full, size):
            self._writer.write_table(table.slice(start, size), row_group_size=size)
        rest = table.slice(full)
        self._pending = rest.to_batches()
        self._pending_rows = rest.num_rows

    def close(self) -> None:
        with self._out.writing():
            self._flush(final=True)
            self._writer.close()
        self._out.commit()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
        self._out.abort()


def _columns(results: Sequence[FetchResult]) -> dict[str, list[Any]]:
    return {
        "url": [r.url for r in results],
        "final_url": [r.final_url for r in results],
        "status": [r.status for r in results],
        "error_kind": [r.error_kind for r in results],
        "error": [None if r.error is None else utf8_text(r.error) for r in results],
        "depth": [r.depth for r in results],
        "parent_url": [r.parent_url for r in results],
        "content_type": [r.content_type for r in results],
        "bytes": [r.bytes for r in results],
        "attempts": [r.attempts for r in results],
        "elapsed_ms": [r.elapsed_ms for r in results],
        "ttfb_ms": [r.ttfb_ms for r in results],
        "fetched_at": [round(r.fetched_at * 1000) for r in results],
        "method": [r.method for r in results],
        "redirects": [list(r.redirects) for r in results],
        "body_hash": [r.body_hash for r in results],
        "headers": [
            [{"name": utf8_text(n), "value": utf8_text(v)} for n, v in r.headers] for r in results
        ],
        "fields": [
            None if r.fields is None else json.dumps(r.fields, ensure_ascii=False) for r in results
        ],
        "encoding": [r.encoding for r in results],
        "proxy": [r.proxy for r in results],
    }


def _typed_fields(fields: dict[str, object] | None, extract: ExtractRules) -> dict[str, Any] | None:
    if fields is None:
        return None
    typed: dict[str, Any] = {}
    for rule in extract.rules:
        value = fields.get(rule.name)
        if rule.many:
            items = value if isinstance(value, list) else None if value is None else [value]
            typed[rule.name] = None if items is None else [scalar_text(v) for v in items]
        else:
            typed[rule.name] = scalar_text(value)
    noindex = fields.get("noindex")
    typed["noindex"] = noindex if isinstance(noindex, bool) else None
    return typed
