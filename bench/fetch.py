"""Benchmark: ``shoal fetch`` vs bare aiohttp and pyreqwest worker pools, same URLs.

    .venv/bin/python bench/fetch.py [--pages 20000] [--concurrency 128] [--rounds 3]
                                    [--http auto|aiohttp|pyreqwest]

Serves small static pages from nginx (if installed; else shoal's testweb in
another process), then alternates the clients for a few rounds: the bare
aiohttp loop (``_bare_fetch.py``), the bare pyreqwest loop
(``_bare_pyreqwest.py``) and ``shoal fetch`` (its default HTTP client unless
``--http`` is given), and prints pages/s, client CPU µs/page, peak RSS and the
ratios of shoal to each bare loop. Targets: shoal ≥ 1.5× the bare aiohttp
loop and ≥ 0.8× the bare pyreqwest loop, while recording every result in
SQLite.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Measured, run_measured, static_server  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--http", default=None, help="shoal's --http (default: its own)")
    parser.add_argument(
        "--no-nginx", action="store_true", help="serve with testweb even if nginx exists"
    )
    args = parser.parse_args()
    shoal = str(Path(sys.executable).with_name("shoal"))
    results: dict[str, list[Measured]] = {
        "bare aiohttp": [],
        "bare pyreqwest": [],
        "shoal fetch": [],
    }
    with (
        static_server(prefer_nginx=not args.no_nginx) as (base, server),
        tempfile.TemporaryDirectory() as tmp,
    ):
        urls = Path(tmp) / "urls.txt"
        urls.write_text("".join(f"{base}/static/{i}\n" for i in range(args.pages)))
        print(f"server: {server} at {base}; {args.pages:,} pages; concurrency {args.concurrency}")
        for round_no in range(args.rounds):
            bare = run_measured(
                "bare aiohttp",
                [sys.executable, str(HERE / "_bare_fetch.py"), str(urls), str(args.concurrency)],
                args.pages,
            )
            rust = run_measured(
                "bare pyreqwest",
                [
                    sys.executable,
                    str(HERE / "_bare_pyreqwest.py"),
                    str(urls),
                    str(args.concurrency),
                ],
                args.pages,
            )
            db = Path(tmp) / f"bench-{round_no}.db"
            mine = run_measured(
                "shoal fetch",
                [
                    shoal,
                    "fetch",
                    str(urls),
                    "--store",
                    str(db),
                    "--quiet",
                    "--concurrency",
                    str(args.concurrency),
                    "--per-host",
                    str(args.concurrency),
                    "--retries",
                    "0",
                    *(["--http", args.http] if args.http else []),
                ],
                args.pages,
            )
            recorded = _recorded(db)
            if recorded != args.pages or mine.exit_code or bare.exit_code or rust.exit_code:
                print(
                    f"round {round_no}: FAILED (shoal exit {mine.exit_code}, recorded {recorded}, "
                    f"bare exit {bare.exit_code}, bare pyreqwest exit {rust.exit_code})"
                )
                return 1
            results["bare aiohttp"].append(bare)
            results["bare pyreqwest"].append(rust)
            results["shoal fetch"].append(mine)
            print(
                f"round {round_no + 1}: bare aiohttp {bare.pages_per_s:,.0f} pages/s, "
                f"bare pyreqwest {rust.pages_per_s:,.0f} pages/s, "
                f"shoal {mine.pages_per_s:,.0f} pages/s (recorded {recorded:,})"
            )
    print()
    print(f"{'client':<16} {'pages/s':>9} {'CPU µs/page':>12} {'peak RSS MB':>12}")
    medians = {}
    for name, runs in results.items():
        rate = statistics.median(r.pages_per_s for r in runs)
        cpu = statistics.median(r.cpu_us_per_page for r in runs)
        rss = max(r.peak_rss_mb for r in runs)
        medians[name] = rate
        print(f"{name:<16} {rate:>9,.0f} {cpu:>12,.0f} {rss:>12,.1f}")
    print()
    for peer, target in (("bare aiohttp", 1.5), ("bare pyreqwest", 0.8)):
        ratio = medians["shoal fetch"] / medians[peer]
        verdict = "met" if ratio >= target else "not met"
        print(f"ratio shoal/{peer}: {ratio:.2f}× (target ≥ {target:.1f}×: {verdict})")
    print(f"medians of {args.rounds} rounds; load average now {os.getloadavg()[0]:.1f}")
    return 0


def _recorded(db: Path) -> int:
    if not db.exists():
        return -1
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM results").fetchone()[0])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
