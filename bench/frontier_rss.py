"""Benchmark: peak memory of a shoal process holding a 1,000,000-URL frontier.

    .venv/bin/python bench/frontier_rss.py [--urls 1000000] [--seconds 240] [--after 5]

Writes URLS distinct URLs on one loopback nginx (every path answers 200 with
a small page; testweb without nginx) and runs ``shoal fetch`` on them with a
SQLite store. While it runs, the harness reads the store (read-only, about
twice a second) to see when every URL has been admitted to the frontier; AFTER
seconds later, or at SECONDS at the latest, it sends SIGINT (shoal's graceful
stop) and gives the process 30 s to exit before killing it. Reports the peak
RSS of the process (wait4), the admission rate (frontier rows/s), how many
pages were fetched meanwhile, and how long the graceful stop took.
What it looks at (DESIGN.md, bounded memory): the frontier lives in the store,
so peak RSS should not grow with the frontier's size; compare with --urls 100000.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import run_measured, static_server  # noqa: E402

GRACE_S = 30.0
POLL_EVERY_S = 0.5


@dataclass
class Watch:
    """Decides when to interrupt shoal, from the store's progress."""

    db: Path
    urls: int
    after_s: float
    limit_s: float
    admitted_at: float | None = None
    interrupted_at: float | None = None
    last_poll: float = -1.0
    conn: sqlite3.Connection | None = field(default=None, repr=False)

    def __call__(self, elapsed: float) -> bool:
        if elapsed - self.last_poll >= POLL_EVERY_S:
            self.last_poll = elapsed
            if self.admitted_at is None and self._frontier_rows() >= self.urls:
                self.admitted_at = elapsed
        due = self.limit_s if self.admitted_at is None else self.admitted_at + self.after_s
        if elapsed >= min(due, self.limit_s):
            self.interrupted_at = elapsed
            return True
        return False

    def _frontier_rows(self) -> int:
        """The highest row id in ``requests`` (rows are appended): cheap on a large table."""
        try:
            if self.conn is None:
                if not self.db.exists():
                    return 0
                self.conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=0.05)
            row = self.conn.execute("SELECT max(id) FROM requests").fetchone()
        except sqlite3.Error:
            return 0
        return int(row[0] or 0)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--urls", type=int, default=1_000_000)
    parser.add_argument(
        "--seconds", type=float, default=240.0, help="interrupt shoal after this long at most"
    )
    parser.add_argument(
        "--after", type=float, default=5.0, help="seconds to keep running once all are admitted"
    )
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument(
        "--no-nginx", action="store_true", help="serve with testweb even if nginx exists"
    )
    args = parser.parse_args()
    shoal = str(Path(sys.executable).with_name("shoal"))
    with (
        static_server(prefer_nginx=not args.no_nginx) as (base, server),
        tempfile.TemporaryDirectory(prefix="shoal-bench-frontier-") as tmp,
    ):
        urls = Path(tmp) / "urls.txt"
        with urls.open("w") as f:
            f.writelines(f"{base}/static/{i}\n" for i in range(args.urls))
        db = Path(tmp) / "frontier.db"
        print(
            f"server: {server} at {base}; {args.urls:,} URLs "
            f"({urls.stat().st_size / 2**20:.0f} MiB file); concurrency {args.concurrency}"
        )
        watch = Watch(db=db, urls=args.urls, after_s=args.after, limit_s=args.seconds)
        try:
            run = run_measured(
                "shoal fetch",
                [
                    *(shoal, "fetch", str(urls), "--store", str(db), "--quiet"),
                    *("--concurrency", str(args.concurrency), "--per-host", str(args.concurrency)),
                    *("--retries", "0", "--job", "frontier"),
                ],
                args.urls,
                limit_s=args.seconds + GRACE_S + 5,
                interrupt=watch,
                grace_s=GRACE_S,
            )
        finally:
            watch.close()
        admitted, fetched = _counts(db)
    print(f"exit code {run.exit_code}" + (f" ({run.stopped})" if run.stopped else ""))
    print(f"frontier rows (requests): {admitted:,} of {args.urls:,}")
    print(f"results recorded meanwhile: {fetched:,}")
    if watch.admitted_at is not None:
        rate = admitted / watch.admitted_at
        print(
            f"admission: all {args.urls:,} URLs in {watch.admitted_at:.1f} s "
            f"({rate:,.0f} rows/s, from process start, while fetching)"
        )
    else:
        span = watch.interrupted_at or run.wall_s
        print(
            f"admission: NOT complete after {span:.1f} s: {admitted:,} rows "
            f"({admitted / span:,.0f} rows/s)"
        )
    if watch.interrupted_at is not None:
        print(f"graceful stop after SIGINT: {run.wall_s - watch.interrupted_at:.1f} s")
    print(f"peak RSS: {run.peak_rss_mb:,.1f} MB; CPU {run.cpu_s:.1f} s in {run.wall_s:.1f} s wall")
    ok = run.stopped != "killed" and admitted == args.urls
    return 0 if ok else 1


def _counts(db: Path) -> tuple[int, int]:
    if not db.exists():
        return -1, -1
    with sqlite3.connect(db) as conn:
        admitted = int(conn.execute("SELECT count(*) FROM requests").fetchone()[0])
        fetched = int(conn.execute("SELECT count(*) FROM results").fetchone()[0])
    return admitted, fetched


if __name__ == "__main__":
    sys.exit(main())
