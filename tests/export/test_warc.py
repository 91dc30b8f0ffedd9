"""WARC export, checked with warcio's own tools: ``check``, ``index`` and its reader."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator  # type: ignore[import-untyped]

from shoal.core.errors import ConfigError
from shoal.core.model import FetchResult
from shoal.export.warc import WarcWriter
from shoal.export.writers import format_for, open_writer

BASE_TS = 1_700_000_000.0


def with_body(i: int) -> FetchResult:
    body = f"<html><body>page {i} café</body></html>".encode() * (1 + i % 5)
    return FetchResult(
        request_id=i,
        url=f"http://h{i % 3}.example:8080/p/{i}",
        final_url=f"http://h{i % 3}.example:8080/q/{i}?x={i}",
        status=200 if i % 4 else 404,
        headers=(
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Encoding", "gzip"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "17"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
        ),
        content_type="text/html",
        bytes=len(body),
        body=body,
        fetched_at=BASE_TS + i,
    )


def without_body(i: int) -> FetchResult:
    return FetchResult(request_id=i, url=f"http://gone.example/{i}", error_kind="connect")


def warcio(*args: str) -> subprocess.CompletedProcess[str]:
    """Run warcio's command line (``warcio`` has no ``__main__``; its ``cli`` module does)."""
    return subprocess.run(
        [sys.executable, "-m", "warcio.cli", *args], capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize("name", ["out.warc.gz", "out.warc"])
def test_records_pass_warcio_check_index_and_read_back(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    results = [with_body(i) for i in range(20)]
    writer = open_writer(str(path))
    assert isinstance(writer, WarcWriter)
    writer.write(results[:10] + [without_body(100), without_body(101)])
    writer.write(results[10:] + [without_body(102)])
    assert not path.exists(), "visible before close"
    writer.close()
    assert (writer.written, writer.skipped) == (20, 3)
    assert not Path(f"{path}.partial").exists()
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b"WA")

    checked = warcio("check", "-v", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    indexed = warcio("index", "-f", "warc-type,warc-target-uri,warc-date", str(path))
    assert indexed.returncode == 0, indexed.stderr
    entries = [json.loads(line) for line in indexed.stdout.splitlines()]
    assert entries[0]["warc-type"] == "warcinfo"
    entries = entries[1:]
    expected = []
    for r in results:
        date = datetime.fromtimestamp(r.fetched_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # warcio writes each pair response first, then the request that refers to it.
        for kind in ("response", "request"):
            expected.append({"warc-type": kind, "warc-target-uri": r.final_url, "warc-date": date})
    assert entries == expected

    # A record's payload can only be read while the iterator stands on it.
    with path.open("rb") as stream:
        records = [(rec, rec.content_stream().read()) for rec in ArchiveIterator(stream)]
    info, info_payload = records.pop(0)
    assert info.rec_type == "warcinfo"
    assert info.rec_headers.protocol == "WARC/1.1"
    assert info.rec_headers.get_header("WARC-Filename") == name
    assert b"software: shoal/" in info_payload and b"WARC File Format 1.1" in info_payload
    assert len(records) == 40
    assert {rec.rec_headers.protocol for rec, _ in records} == {"WARC/1.1"}
    for n, r in enumerate(results):
        (response, payload), (request, _) = records[2 * n], records[2 * n + 1]
        assert request.rec_type == "request"
        assert request.http_headers.protocol == "GET"
        assert request.http_headers.statusline == f"/q/{n}?x={n} HTTP/1.1"
        assert request.http_headers.get_header("Host") == f"h{n % 3}.example:8080"
        assert response.rec_type == "response"
        assert response.http_headers.get_statuscode() == str(r.status)
        headers = response.http_headers
        assert headers.get_header("Content-Encoding") is None
        assert headers.get_header("Transfer-Encoding") is None
        assert headers.get_header("Content-Length") == str(len(r.body or b""))
        assert headers.get_header("Content-Type") == "text/html; charset=utf-8"
        assert [v for k, v in headers.headers if k == "Set-Cookie"] == ["a=1", "b=2"]
        assert response.rec_headers.get_header("WARC-Payload-Digest")
        assert response.rec_headers.get_header("WARC-Block-Digest")
        response_id = response.rec_headers.get_header("WARC-Record-ID")
        assert request.rec_headers.get_header("WARC-Concurrent-To") == response_id
        assert payload == r.body


def test_corruption_is_caught_by_warcio_check(tmp_path: Path) -> None:
    """The check above has teeth: a flipped payload byte fails the digest."""
    path = tmp_path / "out.warc"
    writer = WarcWriter(str(path))
    writer.write([with_body(1)])
    writer.close()
    data = path.read_bytes()
    path.write_bytes(data.replace(b"page 1", b"page 2", 1))
    checked = warcio("check", str(path))
    assert checked.returncode == 1
    assert "payload digest failed" in checked.stdout


def test_no_bodies_is_an_error_and_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "out.warc.gz"
    writer = WarcWriter(str(path))
    writer.write([without_body(i) for i in range(5)])
    with pytest.raises(ConfigError, match="--save-bodies"):
        writer.close()
    assert not path.exists()
    assert not Path(f"{path}.partial").exists()

    empty = WarcWriter(str(path))
    with pytest.raises(ConfigError, match="no bodies"):
        empty.close()
    assert list(tmp_path.iterdir()) == []


def test_format_and_refusals(tmp_path: Path) -> None:
    assert format_for("crawl.warc.gz") == "warc"
    assert format_for("crawl.WARC.GZ") == "warc"
    assert format_for("crawl.warc") == "warc"
    assert format_for("v1.2.warc.gz") == "warc"
    assert format_for("out.jsonl") == "jsonl"
    assert format_for("out.csv") == "csv"
    assert format_for("-") == "jsonl"
    with pytest.raises(ConfigError, match="suffix"):
        format_for("data.gz")
    with pytest.raises(ConfigError, match="standard output"):
        open_writer("-", "warc")
    gzipped = WarcWriter(str(tmp_path / "explicit.bin"))
    gzipped.write([with_body(1)])
    gzipped.close()
    assert (tmp_path / "explicit.bin").read_bytes()[:2] == b"\x1f\x8b"
    with gzip.open(tmp_path / "explicit.bin") as stream:
        assert stream.read(9) == b"WARC/1.1\r"
