"""Benchmark: the HTTP clients under shoal, bare and inside ``shoal fetch``, and wrk's ceiling.

    .venv/bin/python bench/transports.py [--pages 20000] [--concurrency 64] [--rounds 3]

Serves small static pages from nginx (if installed; else shoal's testweb in
another process). Each round runs every contender once, in turn, on the same
URL list: the bare aiohttp, pyreqwest and rnet loops (``_bare_*.py``: N
workers reading every body, keeping nothing), ``shoal fetch --http X`` for
each client shoal offers, and wrk (when installed) as the ceiling. Prints
the medians of pages/s and client CPU µs/page, and each contender's ratio to
the bare aiohttp loop.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Measured, run_measured, static_server  # noqa: E402

HERE = Path(__file__).resolve().parent
SHOAL_CLIENTS = ("auto", "aiohttp", "pyreqwest")
BARE = {"aiohttp": "_bare_fetch.py", "pyreqwest": "_bare_pyreqwest.py", "rnet": "_bare_rnet.py"}
WRK_SECONDS = 5


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-nginx", action="store_true", help="serve with testweb even if nginx exists"
    )
    args = parser.parse_args()
    shoal = str(Path(sys.executable).with_name("shoal"))
    bare = {name: script for name, script in BARE.items() if importlib.util.find_spec(name)}
    results: dict[str, list[Measured]] = {}
    wrk_rates: list[float] = []
    wrk = shutil.which("wrk")
    with (
        static_server(prefer_nginx=not args.no_nginx) as (base, server),
        tempfile.TemporaryDirectory() as tmp,
    ):
        urls = Path(tmp) / "urls.txt"
        urls.write_text("".join(f"{base}/static/{i}\n" for i in range(args.pages)))
        print(f"server: {server} at {base}; {args.pages:,} pages; concurrency {args.concurrency}")
        for round_no in range(args.rounds):
            line = []
            for name, script in bare.items():
                label = f"bare {name}"
                run = run_measured(
                    label,
                    [sys.executable, str(HERE / script), str(urls), str(args.concurrency)],
                    args.pages,
                )
                if run.exit_code != 0:
                    print(f"round {round_no + 1}: {label} FAILED (exit {run.exit_code})")
                    return 1
                results.setdefault(label, []).append(run)
                line.append(f"{label} {run.pages_per_s:,.0f}")
            for client in SHOAL_CLIENTS:
                label = f"shoal --http {client}"
                db = Path(tmp) / f"bench-{client}-{round_no}.db"
                run = run_measured(
                    label,
                    [
                        shoal,
                        "fetch",
                        str(urls),
                        "--store",
                        str(db),
                        "--quiet",
                        "--http",
                        client,
                        "--concurrency",
                        str(args.concurrency),
                        "--per-host",
                        str(args.concurrency),
                        "--retries",
                        "0",
                    ],
                    args.pages,
                )
                recorded = _recorded_ok(db)
                if run.exit_code != 0 or recorded != args.pages:
                    print(
                        f"round {round_no + 1}: {label} FAILED "
                        f"(exit {run.exit_code}, {recorded} pages recorded with status 200)"
                    )
                    return 1
                results.setdefault(label, []).append(run)
                line.append(f"{label} {run.pages_per_s:,.0f}")
            if wrk:
                rate = _wrk(wrk, f"{base}/static/0", args.concurrency)
                wrk_rates.append(rate)
                line.append(f"wrk {rate:,.0f}")
            print(f"round {round_no + 1}: " + ", ".join(line) + " pages/s")
    print()
    print(f"{'contender':<22} {'pages/s':>9} {'CPU µs/page':>12} {'÷ bare aiohttp':>15}")
    reference = statistics.median(r.pages_per_s for r in results["bare aiohttp"])
    for name, runs in results.items():
        rate = statistics.median(r.pages_per_s for r in runs)
        cpu = statistics.median(r.cpu_us_per_page for r in runs)
        print(f"{name:<22} {rate:>9,.0f} {cpu:>12,.0f} {rate / reference:>14.2f}×")
    if wrk_rates:
        rate = statistics.median(wrk_rates)
        print(f"{'wrk (ceiling)':<22} {rate:>9,.0f} {'':>12} {rate / reference:>14.2f}×")
    print(f"\nmedians of {args.rounds} rounds; load average now {os.getloadavg()[0]:.1f}")
    return 0


def _wrk(wrk: str, url: str, concurrency: int) -> float:
    """wrk's requests/s on one URL of the same server (2 threads, the same connections)."""
    out = subprocess.run(
        [wrk, "-t2", f"-c{concurrency}", f"-d{WRK_SECONDS}s", url],
        capture_output=True,
        text=True,
        timeout=WRK_SECONDS + 30,
        check=True,
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(found.group(1)) if found else 0.0


def _recorded_ok(db: Path) -> int:
    if not db.exists():
        return -1
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM results WHERE status = 200").fetchone()[0])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
