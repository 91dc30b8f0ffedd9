"""Parquet export: typed columns that read back as written, in bounded row groups."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from shoal.core.errors import ConfigError
from shoal.core.model import FetchResult
from shoal.export.parquet import SCHEMA, ParquetWriter
from shoal.export.records import COLUMNS
from shoal.export.writers import format_for, open_writer

ROWS = 100_000
BATCH = 1_000
BASE_TS = 1_700_000_000.0


def synthetic(i: int) -> FetchResult:
    """Result ``i``: every 7th a transport failure, some redirected, some with fields."""
    if i % 7 == 0:
        return FetchResult(
            request_id=i,
            url=f"https://h{i % 13}.example/p/{i}",
            error_kind="connect",
            error="connection refused",
            attempts=3,
            fetched_at=BASE_TS + i * 0.25,
            depth=i % 4,
        )
    return FetchResult(
        request_id=i,
        url=f"https://h{i % 13}.example/p/{i}",
        final_url=f"https://h{i % 13}.example/q/{i}",
        redirects=(f"https://h{i % 13}.example/r/{i}",) if i % 3 == 0 else (),
        status=200 if i % 5 else 404,
        headers=(("Content-Type", "text/html; charset=utf-8"), ("X-Note", f"café {i}")),
        content_type="text/html",
        bytes=1000 + i,
        body_hash=f"{i:032x}",
        ttfb_ms=i / 8,
        elapsed_ms=i / 4,
        fetched_at=BASE_TS + i * 0.25,
        depth=i % 4,
        parent_url=None if i % 4 == 0 else f"https://h0.example/p/{i // 2}",
        method="GET" if i % 11 else "POST",
        fields={"title": f"Page {i}", "n": i} if i % 2 else None,
    )


def batches() -> Iterator[list[FetchResult]]:
    for start in range(0, ROWS, BATCH):
        yield [synthetic(i) for i in range(start, start + BATCH)]


def test_round_trip_of_many_rows_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    tracemalloc.start()
    try:
        writer = open_writer(str(path))
        assert isinstance(writer, ParquetWriter)
        for batch in batches():
            writer.write(batch)
        assert not path.exists(), "visible before close"
        writer.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Python's heap holds at most a batch or two; Arrow's pool (not seen by tracemalloc)
    # at most a row group.
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert pa.default_memory_pool().max_memory() < 100 * 2**20
    assert not Path(f"{path}.partial").exists()

    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == ROWS
    assert meta.num_row_groups == 2

    table = pq.read_table(path)
    assert table.schema.names == list(COLUMNS)
    assert table.schema.equals(SCHEMA)
    assert table.schema.field("status").type == pa.int32()
    assert table.schema.field("bytes").type == pa.int64()
    assert table.schema.field("fetched_at").type == pa.timestamp("ms", tz="UTC")
    assert table.column("url").null_count == 0
    assert table.column("status").null_count == len(range(0, ROWS, 7))

    for i in (0, 1, 3, 5, 14, 21, 22, 33, 49_999, 50_000, ROWS - 1):
        expected = synthetic(i)
        row = table.slice(i, 1).to_pylist()[0]
        assert row["url"] == expected.url
        assert row["final_url"] == expected.final_url
        assert row["status"] == expected.status
        assert row["error_kind"] == expected.error_kind
        assert row["error"] == expected.error
        assert row["depth"] == expected.depth
        assert row["parent_url"] == expected.parent_url
        assert row["bytes"] == expected.bytes
        assert row["attempts"] == expected.attempts
        assert row["elapsed_ms"] == expected.elapsed_ms
        assert row["ttfb_ms"] == expected.ttfb_ms
        assert row["fetched_at"] == datetime.fromtimestamp(expected.fetched_at, UTC)
        assert row["method"] == expected.method
        assert row["redirects"] == list(expected.redirects)
        assert row["body_hash"] == expected.body_hash
        assert [(h["name"], h["value"]) for h in row["headers"]] == list(expected.headers)
        fields = None if row["fields"] is None else json.loads(row["fields"])
        assert fields == expected.fields


def test_small_row_groups_and_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "small.parquet"
    writer = ParquetWriter(str(path), row_group_size=10)
    writer.write([synthetic(i) for i in range(25)])
    writer.close()
    assert pq.ParquetFile(path).metadata.num_row_groups == 3

    empty = tmp_path / "empty.parquet"
    ParquetWriter(str(empty)).close()
    table = pq.read_table(empty)
    assert table.num_rows == 0
    assert table.schema.equals(SCHEMA)


def test_format_and_refusals(tmp_path: Path) -> None:
    assert format_for("x.parquet") == "parquet"
    assert format_for("x.PARQUET") == "parquet"
    assert format_for("x.out", "parquet") == "parquet"
    with pytest.raises(ConfigError, match="standard output"):
        open_writer("-", "parquet")
    with pytest.raises(ConfigError, match="does not exist"):
        ParquetWriter(str(tmp_path / "missing" / "x.parquet"))
