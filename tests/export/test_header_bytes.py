"""Any byte a server can send in a header survives the store and every export format.

Header text is the server's bytes read as Latin-1, so ``value.encode("latin-1")``
gives them back: from JSONL, CSV and Parquet through their own readers, and in a
WARC file as the very bytes of the record's header block.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shoal.core.model import Completion, FetchResult, Header
from shoal.export.writers import open_writer
from shoal.store import Store

from ..store.conftest import BACKENDS
from ..store.storekit import T0, all_results, lease_all, new_request

# An HTTP token (RFC 9110 tchar), under a prefix no export rewrites (WARC drops the
# framing headers Content-Length, Content-Encoding and Transfer-Encoding).
_TCHAR = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_NAMES = st.binary(min_size=1, max_size=12).map(
    lambda raw: b"X-" + bytes(_TCHAR[b % len(_TCHAR)] for b in raw)
)
# Any byte but CR and LF, which end a header line on the wire.
_VALUES = st.binary(max_size=40).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b""))
_HEADERS = st.lists(st.tuples(_NAMES, _VALUES), min_size=1, max_size=6)


def as_text(headers: list[tuple[bytes, bytes]]) -> tuple[Header, ...]:
    return tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in headers)


def as_bytes(pairs: object) -> list[tuple[bytes, bytes]]:
    assert isinstance(pairs, list)
    return [(str(n).encode("latin-1"), str(v).encode("latin-1")) for n, v in pairs]


def read_back(path: Path, fmt: str) -> list[tuple[bytes, bytes]]:
    if fmt == "jsonl":
        (line,) = path.read_text(encoding="utf-8").splitlines()
        return as_bytes(json.loads(line)["headers"])
    if fmt == "csv":
        with path.open(encoding="utf-8", newline="") as file:
            (row,) = list(csv.DictReader(file))
        return as_bytes(json.loads(row["headers"]))
    if fmt == "parquet":
        (row,) = pq.read_table(path).column("headers").to_pylist()
        return as_bytes([(h["name"], h["value"]) for h in row])
    raise AssertionError(fmt)


class _Backend:
    """One store opened on a loop of its own, so that hypothesis can drive it example by
    example from a synchronous test."""

    def __init__(self, name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self._context = BACKENDS[name](request, tmp_path)
        self.store: Store = self.loop.run_until_complete(self._context.__aenter__())
        self._jobs = itertools.count()

    def run(self, headers: tuple[Header, ...]) -> FetchResult:
        return self.loop.run_until_complete(self._round_trip(headers))

    async def _round_trip(self, headers: tuple[Header, ...]) -> FetchResult:
        job = await self.store.ensure_job(f"job{next(self._jobs)}", mode="fetch", config={})
        await self.store.add_requests(job.id, [new_request("page")], now=T0)
        (request,) = await lease_all(self.store, job.id)
        result = FetchResult(
            request_id=request.id,
            url=request.url,
            status=200,
            headers=headers,
            body=b"<p>x</p>",
            body_hash="h",
            bytes=8,
            fetched_at=T0,
        )
        await self.store.complete(job.id, "w1", Completion(results=[result]), now=T0)
        (stored,) = await all_results(self.store, job.id, with_bodies=True)
        return stored

    def close(self) -> None:
        self.loop.run_until_complete(self._context.__aexit__(None, None, None))
        self.loop.close()


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_Backend]:
    opened = _Backend(request.param, request, tmp_path)
    try:
        yield opened
    finally:
        opened.close()


def test_random_header_bytes_survive_the_store_and_every_export(
    backend: _Backend, tmp_path: Path
) -> None:
    outputs = itertools.count()

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(headers=_HEADERS)
    # NEL (a line break to str.splitlines), NUL, and UTF-8 for U+2028 (read as Latin-1).
    @example(headers=[(b"X-Nel", b"a\x85b\x00c\xe2\x80\xa8")])
    def round_trip(headers: list[tuple[bytes, bytes]]) -> None:
        stored = backend.run(as_text(headers))
        assert [(n.encode("latin-1"), v.encode("latin-1")) for n, v in stored.headers] == headers
        n = next(outputs)
        for fmt in ("jsonl", "csv", "parquet"):
            path = tmp_path / f"out{n}.{fmt}"
            writer = open_writer(str(path))
            writer.write([stored])
            writer.close()
            assert read_back(path, fmt) == headers, fmt
        path = tmp_path / f"out{n}.warc"
        writer = open_writer(str(path))
        writer.write([stored])
        writer.close()
        raw = path.read_bytes()
        for name, value in headers:
            assert b"\r\n" + name + b": " + value + b"\r\n" in raw

    round_trip()


def test_values_recorded_by_older_versions_still_export(tmp_path: Path) -> None:
    """Older versions kept undecodable header bytes as lone surrogates: every format still
    writes them (JSON: an escape that reads back as the same character)."""
    old = FetchResult(
        request_id=1,
        url="http://a.test/",
        status=200,
        headers=(("X-Old", "caf\udce9"),),
        body=b"x",
        bytes=1,
        fetched_at=T0,
    )
    for fmt in ("jsonl", "csv", "parquet", "warc"):
        path = tmp_path / f"old.{fmt}"
        writer = open_writer(str(path))
        writer.write([old])
        writer.close()
        assert path.exists()
    (line,) = (tmp_path / "old.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["headers"] == [["X-Old", "caf\udce9"]]
    assert b"X-Old: caf\xe9\r\n" in (tmp_path / "old.warc").read_bytes()
