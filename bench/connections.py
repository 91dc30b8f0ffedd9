"""Benchmark: memory of ``shoal fetch`` holding 10,000 requests open at once.

    .venv/bin/python bench/connections.py [--connections 10000] [--delay 25] [--http aiohttp]

A loopback server (``_slow_server.py``) holds every request for ``--delay``
seconds (below the default 30 s read timeout), then answers it. ``shoal
fetch`` gets as many distinct URLs as connections, with ``--concurrency`` and
``--per-host`` raised to that number and every other setting at its default
(fetch processes included). While the requests are held, the proportional
set size (PSS, from /proc/PID/smaps_rollup: shared pages split among the
processes sharing them) and the RSS of the command and each of its fetch
processes are sampled every 0.5 s; the table shows the sample with the most
requests held, summed over the processes. Every run is bounded in time.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import free_port  # noqa: E402

HERE = Path(__file__).resolve().parent
SAMPLE_S = 0.5


@dataclass
class Sample:
    held: int = 0
    pss_kb: dict[int, int] = field(default_factory=dict)
    rss_kb: dict[int, int] = field(default_factory=dict)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--delay", type=float, default=25.0)
    parser.add_argument("--http", action="append", help="client(s) to run (default: each)")
    parser.add_argument("--processes", type=int, default=None, help="default: shoal's own")
    args = parser.parse_args()
    clients = args.http or ["auto", "aiohttp", "pyreqwest"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    shoal = str(Path(sys.executable).with_name("shoal"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        count_file = str(Path(tmp) / "held")
        server = subprocess.Popen(
            [sys.executable, str(HERE / "_slow_server.py"), str(port), str(args.delay), count_file]
        )
        try:
            _wait_file(count_file)
            urls = Path(tmp) / "urls.txt"
            urls.write_text(
                "".join(f"http://127.0.0.1:{port}/slow/{i}\n" for i in range(args.connections))
            )
            for client in clients:
                db = Path(tmp) / f"{client}.db"
                argv = [
                    shoal,
                    "fetch",
                    str(urls),
                    "--store",
                    str(db),
                    "--quiet",
                    "--http",
                    client,
                    "--concurrency",
                    str(args.connections),
                    "--per-host",
                    str(args.connections),
                    "--retries",
                    "0",
                ]
                if args.processes is not None:
                    argv += ["--processes", str(args.processes)]
                best, elapsed, code = _run_sampled(argv, count_file, args.delay + 120)
                ok = _recorded_ok(db)
                label = f"shoal --http {client}"
                if args.processes is not None:
                    label += f" --processes {args.processes}"
                rows.append((label, best, ok, elapsed, code))
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"{args.connections:,} requests held {args.delay:g} s by a loopback server")
    print(
        f"{'contender':<34} {'held':>6} {'PSS MB':>7} {'RSS MB':>7}  "
        f"{'PSS per process MB':<22} {'200s':>6} {'s':>5}"
    )
    for label, best, ok, elapsed, code in rows:
        pss = sum(best.pss_kb.values()) / 1024
        rss = sum(best.rss_kb.values()) / 1024
        each = " + ".join(f"{kb / 1024:.0f}" for kb in best.pss_kb.values())
        status = "" if code == 0 else f"  exit {code}"
        print(
            f"{label:<34} {best.held:>6,} {pss:>7.0f} {rss:>7.0f}  {each:<22} "
            f"{ok:>6,} {elapsed:>5.0f}{status}"
        )
    print(f"load average now {os.getloadavg()[0]:.1f}")
    return 0


def _run_sampled(argv: list[str], count_file: str, limit_s: float) -> tuple[Sample, float, int]:
    """Run ``argv``; sample its processes' memory until it exits (killed after ``limit_s``).
    Returns the sample taken while the server held the most requests."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    best = Sample()
    try:
        while proc.poll() is None:
            if time.monotonic() - started > limit_s:
                proc.kill()
                break
            held = _held(count_file)
            if held >= best.held:
                pids = [proc.pid, *_children(proc.pid)]
                sample = Sample(held=held)
                for pid in pids:
                    rollup = _rollup(pid)
                    if rollup:
                        sample.pss_kb[pid], sample.rss_kb[pid] = rollup
                if sample.pss_kb:
                    best = sample
            time.sleep(SAMPLE_S)
    finally:
        proc.wait()
    return best, time.monotonic() - started, proc.returncode


def _held(count_file: str) -> int:
    try:
        return int(Path(count_file).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            found.extend(int(child) for child in text.split())
    except OSError:
        pass
    return found


def _rollup(pid: int) -> tuple[int, int] | None:
    """(PSS, RSS) in KiB of one process, from /proc/PID/smaps_rollup."""
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("Pss", "Rss"):
                values[name] = int(rest.split()[0])
    except (OSError, ValueError):
        return None
    if "Pss" not in values:
        return None
    return values["Pss"], values["Rss"]


def _wait_file(path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError("the slow server did not start")
        time.sleep(0.05)


def _recorded_ok(db: Path) -> int:
    if not db.exists():
        return -1
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM results WHERE status = 200").fetchone()[0])


if __name__ == "__main__":
    sys.exit(main())
