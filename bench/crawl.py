"""Benchmark: a full crawl of one static site by shoal, Scrapy and a bare aiohttp loop.

    .venv/bin/python bench/crawl.py [--pages 20000] [--concurrency 128] [--rounds 3]
                                    [--scrapy-pages N] [--scrapy-rounds 1] [--no-scrapy]

Writes a site of PAGES static HTML pages (2–5 KB, LINKS links each, a link
graph from shoal.testweb.site so every page is reachable from /) to a temp
dir and serves it with nginx (1 worker); without nginx, shoal's testweb
serves the same graph and the output says so. Each contender crawls the
whole site from / at the same concurrency, as a child process measured with
wait4 (wall, CPU, peak RSS), and its page count is checked against the site:

  shoal crawl   every page recorded in its SQLite store (results rows)
  Scrapy        a CrawlSpider + LinkExtractor (bench/_scrapy_crawl.py), asyncio
                reactor on uvloop, no retries, no robots.txt, no item pipeline
  Scrapy tuned  the same with CONCURRENT_ITEMS=8 (default 100: Scrapy starts that
                many asyncio tasks per response to process the callback's output)
  bare aiohttp  the crawl loop a user writes by hand (bench/_bare_crawl.py)

shoal and the bare loop run every round, in alternating order; both Scrapys
run in the first --scrapy-rounds rounds (they are slow). Medians over rounds.
Targets: shoal ≥ 20× Scrapy and ≥ 1.5× the bare loop, in pages/s.

Scrapy is installed into this interpreter's environment with
``python -m pip install scrapy``, once, when ``import scrapy`` fails.
The 1M-URL frontier memory check is bench/frontier_rss.py.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from shoal.testweb.site import SiteSpec, index_links, page_links, reachable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Measured, run_measured, site_server  # noqa: E402

HERE = Path(__file__).resolve().parent
SHOAL, SCRAPY, SCRAPY_TUNED, BARE = "shoal crawl", "Scrapy", "Scrapy tuned", "bare aiohttp"
TARGETS = {SCRAPY: 20.0, SCRAPY_TUNED: 20.0, BARE: 1.5}
TUNED_CONCURRENT_ITEMS = 8

_FILLER = (
    "A shoal of small fish turns as one body, each keeping its distance from the next "
    "and following the neighbours it can see; nobody leads and nobody is left behind. "
)


@dataclass
class Run:
    measured: Measured
    crawled: int
    expected: int
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.measured.exit_code == 0 and self.crawled == self.expected


def page_size(page: int | None) -> int:
    """A deterministic size between 2 and 5 KB."""
    return 3000 if page is None else 2048 + (page * 7919) % 3072


def render(spec: SiteSpec, page: int | None) -> bytes:
    targets = index_links(spec, 0) if page is None else page_links(spec, 0, page)
    title = "index" if page is None else f"page {page}"
    links = "".join(f'<li><a href="/page/{t.page}">page {t.page}</a></li>\n' for t in targets)
    head = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n<ul>\n{links}</ul>\n"
    )
    tail = "</body></html>\n"
    fill = max(0, page_size(page) - len(head) - len(tail) - len("<p></p>\n"))
    text = (_FILLER * (fill // len(_FILLER) + 1))[:fill]
    return f"{head}<p>{text}</p>\n{tail}".encode()


def write_site(root: Path, spec: SiteSpec) -> tuple[int, int]:
    """Write ``/`` and every ``/page/N`` under ``root``; return (files, bytes)."""
    (root / "page").mkdir(parents=True)
    body = render(spec, None)
    (root / "index.html").write_bytes(body)
    total = len(body)
    for page in range(spec.pages):
        body = render(spec, page)
        (root / "page" / str(page)).write_bytes(body)
        total += len(body)
    return spec.pages + 1, total


def testweb_args(spec: SiteSpec) -> list[str]:
    return [
        *("--pages", str(spec.pages), "--links", str(spec.links_per_page)),
        *("--page-bytes", "3500", "--no-sitemaps", "--no-log"),
    ]


def ensure_scrapy() -> bool:
    if importlib.util.find_spec("scrapy") is not None:
        return True
    print(f"Scrapy is not installed for {sys.executable}; running pip install scrapy once …")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "scrapy"], timeout=900
        )
    except subprocess.TimeoutExpired:
        print("pip install scrapy timed out; Scrapy is left out")
        return False
    importlib.invalidate_caches()
    if done.returncode != 0 or importlib.util.find_spec("scrapy") is None:
        print(f"pip install scrapy failed (exit {done.returncode}); Scrapy is left out")
        return False
    return True


def run_shoal(base: str, tmp: Path, round_no: int, concurrency: int, expected: int) -> Run:
    db = tmp / f"shoal-{round_no}.db"
    shoal = str(Path(sys.executable).with_name("shoal"))
    measured = run_measured(
        SHOAL,
        [
            *(shoal, "crawl", f"{base}/", "--store", str(db), "--quiet", "--ignore-robots"),
            *("--concurrency", str(concurrency), "--per-host", str(concurrency)),
            *("--retries", "0", "--job", "b"),
        ],
        expected,
    )
    crawled, detail = _recorded(db)
    return Run(measured, crawled, expected, detail)


def run_child(
    name: str, script: str, base: str, concurrency: int, expected: int, *extra: str
) -> Run:
    measured = run_measured(
        name,
        # -P: not this directory first on sys.path, where queue.py would shadow the stdlib
        # module of that name (Twisted, under Scrapy, imports it).
        [sys.executable, "-P", str(HERE / script), f"{base}/", str(concurrency), *extra],
        expected,
        keep_stdout=True,
    )
    found = re.findall(r"^pages (\d+)$", measured.stdout, re.MULTILINE)
    crawled = int(found[-1]) if found else -1
    return Run(measured, crawled, expected, "" if found else "printed no page count")


def _recorded(db: Path) -> tuple[int, str]:
    """Rows in ``results``, and a breakdown when any of them is not a 200."""
    if not db.exists():
        return -1, "no store file"
    with sqlite3.connect(db) as conn:
        total = int(conn.execute("SELECT count(*) FROM results").fetchone()[0])
        admitted = int(conn.execute("SELECT count(*) FROM requests").fetchone()[0])
        kinds = conn.execute(
            "SELECT status, error_kind, count(*) FROM results "
            "WHERE status IS NULL OR status != 200 GROUP BY 1, 2 ORDER BY 3 DESC"
        ).fetchall()
    notes = [f"{n} × status {s} {k or ''}".rstrip() for s, k, n in kinds]
    if admitted != total:
        notes.append(f"{admitted} admitted")
    return total, "; ".join(notes)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=20_000)
    parser.add_argument("--links", type=int, default=8, help="links per page")
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--scrapy-pages", type=int, default=0, help="site size for Scrapy (default: --pages)"
    )
    parser.add_argument("--scrapy-rounds", type=int, default=1)
    parser.add_argument("--no-scrapy", action="store_true")
    parser.add_argument(
        "--no-scrapy-tuned", action="store_true", help="leave out the tuned Scrapy run"
    )
    parser.add_argument(
        "--no-nginx", action="store_true", help="serve with testweb even if nginx exists"
    )
    args = parser.parse_args()
    scrapy_pages = args.scrapy_pages or args.pages
    with_scrapy = not args.no_scrapy and args.scrapy_rounds > 0 and ensure_scrapy()
    spec = SiteSpec(hosts=1, pages=args.pages, links_per_page=args.links)
    scrapy_spec = SiteSpec(hosts=1, pages=scrapy_pages, links_per_page=args.links)
    runs: dict[str, list[Run]] = {SHOAL: [], BARE: []}
    if with_scrapy:
        runs[SCRAPY] = []
        if not args.no_scrapy_tuned:
            runs[SCRAPY_TUNED] = []
    with tempfile.TemporaryDirectory(prefix="shoal-bench-crawl-") as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)  # nginx workers run as another user (nobody, when started by root)
        files, size = write_site(tmp / "site", spec)
        expected = len(reachable(spec, cross_host=False))
        base, server = stack.enter_context(
            site_server(tmp / "site", testweb_args(spec), prefer_nginx=not args.no_nginx)
        )
        scrapy_base, scrapy_expected = base, expected
        if with_scrapy and scrapy_spec != spec:
            write_site(tmp / "scrapy-site", scrapy_spec)
            scrapy_expected = len(reachable(scrapy_spec, cross_host=False))
            scrapy_base, _ = stack.enter_context(
                site_server(
                    tmp / "scrapy-site", testweb_args(scrapy_spec), prefer_nginx=not args.no_nginx
                )
            )
        print(
            f"server: {server} at {base}; site: {files:,} pages (/ + {args.pages:,}), "
            f"{size / files / 1024:.1f} KB average, {args.links} links/page; "
            f"concurrency {args.concurrency}"
        )
        if "testweb" in server:
            print("nginx not used: testweb serves the same link graph (pages ~3.5 KB)")
        if with_scrapy and scrapy_spec != spec:
            print(
                f"Scrapy crawls a smaller site of {scrapy_expected:,} pages at {scrapy_base}: "
                "compare pages/s only"
            )
        contenders: dict[str, Callable[[int], Run]] = {
            SHOAL: lambda r: run_shoal(base, tmp, r, args.concurrency, expected),
            BARE: lambda r: run_child(BARE, "_bare_crawl.py", base, args.concurrency, expected),
            SCRAPY: lambda r: run_child(
                SCRAPY, "_scrapy_crawl.py", scrapy_base, args.concurrency, scrapy_expected
            ),
            SCRAPY_TUNED: lambda r: run_child(
                SCRAPY_TUNED,
                "_scrapy_crawl.py",
                scrapy_base,
                args.concurrency,
                scrapy_expected,
                str(TUNED_CONCURRENT_ITEMS),
            ),
        }
        for round_no in range(args.rounds):
            names = [SHOAL, BARE] if round_no % 2 == 0 else [BARE, SHOAL]
            if with_scrapy and round_no < args.scrapy_rounds:
                scrapys = [name for name in (SCRAPY, SCRAPY_TUNED) if name in runs]
                names[1:1] = scrapys if round_no % 2 == 0 else scrapys[::-1]
            parts = []
            for name in names:
                run = contenders[name](round_no)
                runs[name].append(run)
                parts.append(_describe(run))
            print(f"round {round_no + 1}: " + "; ".join(parts), flush=True)
    smaller = with_scrapy and scrapy_spec != spec
    return report(runs, args.rounds, " (Scrapy on a smaller site)" if smaller else "")


def _describe(run: Run) -> str:
    m = run.measured
    text = f"{m.name} {run.crawled:,} pages in {m.wall_s:.1f} s"
    if not run.ok:
        text += f" [MISMATCH: expected {run.expected:,}, exit {m.exit_code}"
        text += f"{', ' + m.stopped if m.stopped else ''}]"
    if run.detail:
        text += f" ({run.detail})"
    return text


def report(runs: dict[str, list[Run]], rounds: int, scrapy_note: str = "") -> int:
    print()
    header = (
        f"{'client':<14} {'site':>7} {'crawled':>8} {'runs':>4} {'pages/s':>8} "
        f"{'CPU µs/page':>12} {'peak RSS MB':>12}"
    )
    print(header)
    rates: dict[str, float] = {}
    for name, done in runs.items():
        usable = [r for r in done if r.crawled > 0]
        if not usable:
            print(f"{name:<14} no usable run")
            continue
        for r in usable:
            r.measured.pages = r.crawled
        rate = statistics.median(r.measured.pages_per_s for r in usable)
        cpu = statistics.median(r.measured.cpu_us_per_page for r in usable)
        rss = max(r.measured.peak_rss_mb for r in usable)
        crawled = statistics.median(r.crawled for r in usable)
        flag = "" if all(r.ok for r in usable) else " !"
        rates[name] = rate
        print(
            f"{name:<14} {usable[0].expected:>7,} {crawled:>8,.0f} {len(usable):>4} "
            f"{rate:>8,.0f} {cpu:>12,.0f} {rss:>12,.1f}{flag}"
        )
    print()
    for other, target in TARGETS.items():
        if SHOAL in rates and other in rates:
            ratio = rates[SHOAL] / rates[other]
            verdict = "met" if ratio >= target else "NOT met"
            note = scrapy_note if other != BARE else ""
            print(
                f"ratio shoal/{other}: {math.floor(ratio * 100) / 100:.2f}× pages/s "
                f"(target ≥ {target:.1f}×: {verdict}){note}"
            )
    print(f"medians over {rounds} round(s); peak RSS is the maximum over runs")
    bad = [r for done in runs.values() for r in done if not r.ok]
    if bad:
        print(f"{len(bad)} run(s) marked ! did not crawl exactly the site (see rounds above)")
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
