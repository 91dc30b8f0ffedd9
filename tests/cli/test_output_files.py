"""``-o`` and ``shoal export`` files: a full disk and a second writer are one clear line
with exit code 5, nothing half-written is left behind, and the store stays intact.

"Full disk" is a small tmpfs mounted for the test (root only: skipped otherwise).
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.testweb import TestWeb

from .conftest import result_rows, run_shoal, shoal_argv

EXIT_OUTPUT = 5


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path``: writing past it fails with ENOSPC."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def write_urls(path: Path, urls: list[str]) -> None:
    path.write_text("".join(u + "\n" for u in urls))


def intact(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def only_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_full_disk_under_o_stops_the_run_and_leaves_no_file(site: TestWeb, tmp_path: Path) -> None:
    urls = [site.url(h, f"/page/{n}") for h in range(3) for n in range(40)]
    write_urls(tmp_path / "urls.txt", urls)
    with small_disk(tmp_path / "small", "32k") as small:
        out = small / "out.jsonl"
        ran = run_shoal("fetch", "urls.txt", "-o", str(out), "--quiet", cwd=tmp_path)
        assert ran.code == EXIT_OUTPUT, ran.stderr
        line = only_line(ran.stderr)
        assert line == f"shoal: output error: cannot write {out}: No space left on device"
        assert list(small.iterdir()) == []
    db = tmp_path / "shoal.db"
    intact(db)
    recorded = result_rows(db, "urls")
    assert 0 < len(recorded) <= len(urls)
    # What was fetched is kept: the same command with room to write finishes the job, and
    # its -o has every row.
    ran = run_shoal("fetch", "urls.txt", "-o", "out.jsonl", "--quiet", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["url"] for line in lines) == sorted(urls)


def test_store_and_o_on_one_full_disk(site: TestWeb, tmp_path: Path) -> None:
    """Whichever fills the disk first, the store or the output: one line, its exit code,
    no output file, and a store SQLite finds intact."""
    urls = [site.url(h, f"/page/{n}") for h in range(3) for n in range(40)]
    write_urls(tmp_path / "urls.txt", urls)
    with small_disk(tmp_path / "small", "400k") as small:
        db, out = small / "s.db", small / "out.warc.gz"
        ran = run_shoal(
            "fetch", "urls.txt", "--store", str(db), "-o", str(out), "--quiet", cwd=tmp_path
        )
        line = only_line(ran.stderr)
        if ran.code == EXIT_OUTPUT:
            assert line.startswith(f"shoal: output error: cannot write {out}: No space left")
        else:
            assert ran.code == 3, ran.stderr
            assert line.startswith("shoal: store error:")
        assert not out.exists() and not Path(f"{out}.partial").exists()
        intact(db)


def test_export_to_a_full_disk(site: TestWeb, tmp_path: Path) -> None:
    urls = [site.url(h, f"/page/{n}") for h in range(3) for n in range(40)]
    write_urls(tmp_path / "urls.txt", urls)
    assert run_shoal("fetch", "urls.txt", "--quiet", cwd=tmp_path).code == 0
    db = tmp_path / "shoal.db"
    before = result_rows(db, "urls")
    with small_disk(tmp_path / "small", "4k") as small:
        for name in ("all.jsonl", "all.csv", "all.parquet"):
            out = small / name
            ran = run_shoal("export", "--job", "urls", "-o", str(out), cwd=tmp_path)
            assert ran.code == EXIT_OUTPUT, f"{name}: {ran.stderr}"
            assert only_line(ran.stderr).startswith(f"shoal: output error: cannot write {out}")
            assert list(small.iterdir()) == [], name
    intact(db)
    assert result_rows(db, "urls") == before


def test_a_second_writer_of_one_output_is_refused_before_any_work(
    site: TestWeb, tmp_path: Path
) -> None:
    slow = [site.url(h, f"/delay/{200 + n}") for h in range(3) for n in range(40)]
    write_urls(tmp_path / "slow.txt", slow)
    write_urls(tmp_path / "other.txt", [site.url(0, "/page/1")])
    first = subprocess.Popen(
        shoal_argv("fetch", "slow.txt", "--per-host", "2", "-o", "out.jsonl", "--quiet"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        partial = tmp_path / "out.jsonl.partial"
        deadline = time.monotonic() + 60
        while not partial.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never opened its output"
            time.sleep(0.02)
        ran = run_shoal(
            "fetch", "other.txt", "--store", "other.db", "-o", "out.jsonl", cwd=tmp_path
        )
        assert ran.code == EXIT_OUTPUT, ran.stderr
        line = only_line(ran.stderr)
        assert line.startswith("shoal: output error: out.jsonl is being written by another")
        with contextlib.closing(sqlite3.connect(tmp_path / "other.db")) as conn:
            assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
        assert first.poll() is None, "the first run was disturbed"
    finally:
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    # The first run's output holds every row it recorded.
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    recorded = result_rows(tmp_path / "shoal.db", "slow")
    assert sorted(json.loads(line)["url"] for line in lines) == sorted(u for u, _, _ in recorded)
    assert not partial.exists()
