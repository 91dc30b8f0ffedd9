"""Decompression bombs and endless bodies, many at once: memory stays bounded by
``concurrency × max_bytes``, not by what the servers send.

The fetch runs as a real ``shoal fetch`` child process that reports its own peak RSS
(``VmHWM`` of its address space, read at exit). Not ``ru_maxrss`` from ``wait4``: Linux
carries the high-water mark across ``exec``, so a child forked from a pytest process
grown by earlier tests would report the parent's size (434 MiB in a full run, 182 alone).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shoal.core.config import HTTP_CLIENTS

from ..cli.conftest import result_rows
from .conftest import ZooProcess

# The child reads its peak RSS from /proc/self/status: Linux (CI, the supported platform).
pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/status"), reason="reads peak RSS from /proc (Linux only)"
)

CONCURRENCY = 16
MAX_BYTES = 10 * 1024 * 1024
COPIES = 8
HOSTILE = ("bomb/gzip", "bomb/deflate", "bomb/br", "bomb/zstd", "endless", "endless-declared")
RSS_LIMIT = 300 * 1024 * 1024
CHILD_TIMEOUT = 90.0
PEAK_TAG = "shoal-test-peak-kib:"

# Runs the shoal CLI in this process and, at exit, reports the peak RSS of the address
# space exec created (VmHWM), which owes nothing to the process that forked it.
_REPORTING_MAIN = f"""
import atexit, sys

def _report():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                sys.stderr.write("{PEAK_TAG}" + line.split()[1] + "\\n")

atexit.register(_report)
sys.argv[0] = "shoal"
from shoal.cli import main
main()
"""


def peak_from(stderr: str) -> int:
    """The child's reported peak RSS in bytes."""
    for line in stderr.splitlines():
        if line.startswith(PEAK_TAG):
            return int(line[len(PEAK_TAG) :]) * 1024
    raise AssertionError(f"the child reported no peak RSS; stderr: {stderr[-2000:]}")


def run_measured(argv: list[str], cwd: Path) -> tuple[int, int, float, str]:
    """Run ``argv``; return its exit code, its own peak RSS in bytes, seconds taken and
    stderr."""
    started = time.monotonic()
    with (cwd / "stderr.txt").open("w+") as err:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        try:
            proc.wait(timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        elapsed = time.monotonic() - started
        err.seek(0)
        stderr = err.read()
    return proc.returncode, peak_from(stderr), elapsed, stderr


@pytest.mark.parametrize("http", HTTP_CLIENTS)
def test_bombs_and_endless_bodies_at_once_keep_memory_bounded(
    zoo: ZooProcess, tmp_path: Path, http: str
) -> None:
    urls = [f"{zoo.urls[name]}?copy={n}" for n in range(COPIES) for name in HOSTILE]
    (tmp_path / "urls.txt").write_text("".join(url + "\n" for url in urls))
    zoo.reset_stats()
    code, peak, elapsed, stderr = run_measured(
        [
            sys.executable,
            "-c",
            _REPORTING_MAIN,
            "fetch",
            "urls.txt",
            "--quiet",
            "--concurrency",
            str(CONCURRENCY),
            "--per-host",
            str(CONCURRENCY),
            "--max-bytes",
            str(MAX_BYTES),
            "--retries",
            "0",
            "--timeout",
            "30",
            "--read-timeout",
            "10",
            "--http",
            http,
        ],
        tmp_path,
    )
    assert code == 0, stderr
    rows = result_rows(tmp_path / "shoal.db", "urls")
    assert sorted(url for url, _, _ in rows) == sorted(urls)
    assert {(status, kind) for _, status, kind in rows} == {(200, "too_large")}
    host = zoo.stats().hosts[0]
    assert host.max_in_flight >= CONCURRENCY // 2, "the hostile bodies were not concurrent"
    print(f"peak RSS {peak / 2**20:.0f} MiB, {elapsed:.1f} s for {len(urls)} hostile URLs")
    assert peak < RSS_LIMIT, f"peak RSS {peak / 2**20:.0f} MiB"
    assert elapsed < CHILD_TIMEOUT


# A page of 380,000 links costs a small multiple of its 10 MB, not the 65x that a full
# HTML tree of it and every canonical link would (see docs/errors.md).
DENSE_RSS_LIMIT = 150 * 1024 * 1024  # the interpreter and shoal alone take about 60


@pytest.mark.parametrize("depth", ["0", "1"])
def test_a_link_dense_page_costs_a_small_multiple_of_its_size(
    zoo: ZooProcess, tmp_path: Path, depth: str
) -> None:
    """At --depth 0 no link of the page is read (none would be followed); at --depth 1
    at most MAX_LINKS_PER_PAGE are, and the page is counted as truncated."""
    seed = zoo.url(0, "/zoo/links-dense")
    code, peak, _, stderr = run_measured(
        [
            sys.executable,
            "-c",
            _REPORTING_MAIN,
            "crawl",
            seed,
            "--job",
            "dense",
            "--quiet",
            "--depth",
            depth,
            "--max-pages",
            "20",
            "--max-bytes",
            str(MAX_BYTES),
        ],
        tmp_path,
    )
    assert code == 0, stderr
    rows = result_rows(tmp_path / "shoal.db", "dense")
    assert (seed, 200, None) in rows
    assert len(rows) == (1 if depth == "0" else 20)
    stats = subprocess.run(
        [sys.executable, "-m", "shoal", "stats", "--job", "dense"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ("links_truncated 1" in stats.stdout) == (depth == "1"), stats.stdout
    print(f"peak RSS {peak / 2**20:.0f} MiB for a 10 MB page of 380,000 links, depth {depth}")
    assert peak < DENSE_RSS_LIMIT, f"peak RSS {peak / 2**20:.0f} MiB"
