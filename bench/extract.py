"""Benchmark: ``shoal crawl`` of one static site with and without extraction rules.

    .venv/bin/python bench/extract.py [--pages 20000] [--concurrency 128] [--rounds 3]
                                      [--page-kb N]

The site is bench/crawl.py's (2–5 KB pages, 8 links each, or N KB each with
--page-kb; nginx if installed, else testweb in another process). Three ways
to crawl it, alternating, each a child process measured with wait4 (wall,
CPU, peak RSS):

  no rules           ``shoal crawl`` as it is
  rules              ``shoal crawl --extract ...`` (RULES below): every page is
                     parsed a second time with the rules, in worker threads
  rules, on loop     the same with extraction called on the event loop
                     (bench/_extract_inline.py patches it in): what the
                     worker threads save

Every run must record every page, and the two runs with rules a non-null
title for each. Prints pages/s and CPU µs/page, medians over rounds.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import crawl  # noqa: E402
from _common import Measured, run_measured, site_server  # noqa: E402
from crawl import testweb_args, write_site  # noqa: E402
from shoal.testweb.site import SiteSpec, reachable  # noqa: E402

HERE = Path(__file__).resolve().parent
RULES = [
    "title=css:title::text",
    "heading=css:h1::text",
    "links=css:a::attr(href)[]",
    "items=css:li a::text[]",
    "text=css:p::text",
    r"pages=re:page (\d+)[]",
]
NONE, THREADS, INLINE = "no rules", "rules", "rules, on loop"


def crawl_argv(shoal: list[str], base: str, db: Path, concurrency: int, rules: bool) -> list[str]:
    argv = [
        *shoal,
        *("crawl", f"{base}/", "--store", str(db), "--quiet", "--ignore-robots"),
        *("--concurrency", str(concurrency), "--per-host", str(concurrency)),
        *("--retries", "0", "--job", "b"),
    ]
    if rules:
        argv += [f"--extract={rule}" for rule in RULES]
    return argv


def recorded(db: Path) -> tuple[int, int]:
    """(result rows, rows whose fields have a title)."""
    if not db.exists():
        return -1, -1
    with sqlite3.connect(db) as conn:
        rows = int(conn.execute("SELECT count(*) FROM results").fetchone()[0])
        titled = int(
            conn.execute(
                "SELECT count(*) FROM results WHERE json_extract(fields, '$.title') IS NOT NULL"
            ).fetchone()[0]
        )
    return rows, titled


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-nginx", action="store_true", help="serve with testweb")
    parser.add_argument("--page-kb", type=int, default=0, help="pad every page to N KB")
    args = parser.parse_args()
    if args.page_kb:
        crawl.page_size = lambda _page: args.page_kb * 1024
    spec = SiteSpec(hosts=1, pages=args.pages, links_per_page=8)
    commands = {
        NONE: ([str(Path(sys.executable).with_name("shoal"))], False),
        THREADS: ([str(Path(sys.executable).with_name("shoal"))], True),
        INLINE: ([sys.executable, str(HERE / "_extract_inline.py")], True),
    }
    runs: dict[str, list[Measured]] = {name: [] for name in commands}
    failed = False
    with (
        tempfile.TemporaryDirectory(prefix="shoal-bench-extract-") as tmp_name,
        ExitStack() as stack,
    ):
        tmp = Path(tmp_name)
        tmp.chmod(0o755)  # nginx workers run as another user
        files, size = write_site(tmp / "site", spec)
        expected = len(reachable(spec, cross_host=False))
        base, server = stack.enter_context(
            site_server(tmp / "site", testweb_args(spec), prefer_nginx=not args.no_nginx)
        )
        print(
            f"server: {server} at {base}; {files:,} pages, {size / files / 1024:.1f} KB average; "
            f"concurrency {args.concurrency}; rules: {' '.join(RULES)}"
        )
        for round_no in range(args.rounds):
            names = list(commands)
            if round_no % 2:
                names.reverse()
            parts = []
            for name in names:
                shoal, rules = commands[name]
                db = tmp / f"{name.replace(' ', '-').replace(',', '')}-{round_no}.db"
                measured = run_measured(
                    name, crawl_argv(shoal, base, db, args.concurrency, rules), expected
                )
                rows, titled = recorded(db)
                ok = measured.exit_code == 0 and rows == expected and (not rules or titled == rows)
                failed = failed or not ok
                runs[name].append(measured)
                parts.append(
                    f"{name} {measured.pages_per_s:,.0f} pages/s"
                    + (
                        ""
                        if ok
                        else f" [FAILED: exit {measured.exit_code}, {rows} rows, {titled} titled]"
                    )
                )
            print(f"round {round_no + 1}: " + "; ".join(parts), flush=True)
    print()
    print(f"{'crawl':<16} {'pages/s':>9} {'CPU µs/page':>12} {'peak RSS MB':>12}")
    rates = {}
    for name, done in runs.items():
        rates[name] = statistics.median(m.pages_per_s for m in done)
        cpu = statistics.median(m.cpu_us_per_page for m in done)
        rss = max(m.peak_rss_mb for m in done)
        print(f"{name:<16} {rates[name]:>9,.0f} {cpu:>12,.0f} {rss:>12,.1f}")
    print(
        f"\nwith rules / without: {rates[THREADS] / rates[NONE]:.2f}× pages/s; "
        f"on the loop / without: {rates[INLINE] / rates[NONE]:.2f}×; "
        f"medians of {args.rounds} round(s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
