"""CPU per page of each thread of ``shoal fetch`` and of its fetch processes.

    .venv/bin/python bench/threads.py [--pages 20000] [--concurrency 128] [SHOAL FETCH ARGS...]

Serves small static pages from nginx (if installed; else shoal's testweb in
another process), runs ``shoal fetch`` of PAGES distinct URLs (``--per-host``
as the concurrency, ``--retries 0``, then any further arguments, such as
``--http pyreqwest``), and samples ``/proc/PID/task/TID/stat`` of the command
and of its children every 50 ms until it exits. Prints each thread's CPU
time divided by the pages: the command's event loop is its main thread, the
SQLite writer the busiest other one. To compare two trees, run it with
``PYTHONPATH=OTHER/src`` (bytecode compiled: ``python -m compileall OTHER/src``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import static_server  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
LIMIT_S = 600.0


def _cpu(pid: int, tid: str) -> tuple[str, float] | None:
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, (int(fields[11]) + int(fields[12])) / TICKS


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return found


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=128)
    args, extra = parser.parse_known_args()
    shoal = str(Path(sys.executable).with_name("shoal"))
    with static_server() as (base, server), tempfile.TemporaryDirectory() as tmp:
        urls = Path(tmp) / "urls.txt"
        urls.write_text("".join(f"{base}/static/{i}\n" for i in range(args.pages)))
        concurrency = str(args.concurrency)
        argv = [shoal, "fetch", str(urls), "--store", str(Path(tmp) / "bench.db"), "--quiet"]
        argv += ["--concurrency", concurrency, "--per-host", concurrency, "--retries", "0"]
        start = time.perf_counter()
        proc = subprocess.Popen([*argv, *extra], stdout=subprocess.DEVNULL)
        seen: dict[tuple[int, int], tuple[str, float]] = {}
        while proc.poll() is None:
            if time.perf_counter() - start > LIMIT_S:
                proc.kill()
                proc.wait()
                print(f"killed after {LIMIT_S:.0f} s")
                return 1
            for pid in [proc.pid, *_children(proc.pid)]:
                try:
                    tids = os.listdir(f"/proc/{pid}/task")
                except OSError:
                    continue
                for tid in tids:
                    sample = _cpu(pid, tid)
                    if sample is not None:
                        seen[(pid, int(tid))] = sample
            time.sleep(0.05)
        wall = time.perf_counter() - start
    print(
        f"server: {server}; shoal fetch {' '.join(extra) or '(defaults)'}: exit "
        f"{proc.returncode}, {args.pages / wall:,.0f} pages/s; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for (pid, tid), (name, cpu) in sorted(seen.items()):
        if cpu <= 0:
            continue
        role = "command" if pid == proc.pid else "fetch process"
        thread = "main" if pid == tid else "thread"
        print(f"  {role:<13} {pid:>7} {thread:<6} {name:<16} {cpu * 1e6 / args.pages:8.1f} µs/page")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
