"""Benchmark: ``canonicalize`` per URL, with shoal's own WHATWG parser or ada-url under it.

    .venv/bin/python bench/canonicalize.py [--urls 300000] [--rounds 3]

It needs ada-url, which shoal does not depend on (``.venv/bin/pip install ada-url``).

Each variant is a child process that canonicalizes the same mixed list of link URLs
(CORPUS: already canonical ones, which take the fast path, and ones that need the
parser: relative to a base, upper-case hosts, default ports, escapes, non-ASCII,
dot segments), measured start to exit with wait4. A child that only builds the list
is measured too and subtracted, so the numbers are the canonicalizing alone:

  shoal        ``shoal.core.urls.canonicalize`` as it is
  shoal+ada    the same with ada-url as the parser of its slow path
               (bench/_ada_urls.py: shoal's normalisations on ada's components)
  shoal+ada href  ada's href first, then shoal's canonicalize on it (its fast path,
               mostly)
  ada alone    ``ada_url.URL(url, base).href``: the parser, no normalisation

Prints CPU µs per URL (median over rounds) and each variant's ratio to ``shoal``,
for all URLs and for the slow-path URLs alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import run_measured  # noqa: E402

BASE = "https://www.example.org/docs/guide/page.html?x=1"
# (url, base): a link as a crawl meets it.
FAST = [
    ("https://www.example.org/docs/guide/other.html", None),
    ("https://www.example.org/search?q=shoal&page=2", None),
    ("http://news.example.com/2024/05/17/story-1234", None),
    ("https://cdn.example.net/assets/app.js?v=3", None),
]
SLOW = [
    ("../api/index.html", BASE),
    ("/about#team", BASE),
    ("HTTPS://WWW.Example.ORG:443/Docs/", None),
    ("https://www.example.org/a/./b/../c/%7euser/", None),
    ("https://www.example.org/caf\u00e9/men\u00fc?q=\u00e4\u00f6\u00fc", None),
    ("//static.example.org/img/logo.png", BASE),
    ("?sort=asc&page=3", BASE),
    ("https://b\u00fccher.example/katalog", None),
    ("http://user:pa%73s@example.com/private", None),
    ("https://example.org/path with spaces/file.html", None),
]
CORPUS = {"all": FAST + SLOW, "slow": SLOW}


def child(variant: str, corpus: str, count: int) -> None:
    links = CORPUS[corpus]
    work = [links[i % len(links)] for i in range(count)]
    if variant == "none":
        return
    if variant == "ada":
        import ada_url

        for url, base in work:
            ada_url.URL(url, base=base).href  # noqa: B018
        return
    if variant in ("shoal+ada", "shoal+ada href"):
        import _ada_urls

        _ada_urls.patch(via_href=variant == "shoal+ada href")
    from shoal.core import urls

    canonicalize = urls.canonicalize
    # The parser memoises base URLs, as a crawl does for one page's links; links themselves
    # are not memoised here (the link extractor does that, on top of either parser).
    for url, base in work:
        canonicalize(url, base=base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--urls", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "CORPUS", "COUNT"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    variants = ["shoal", "shoal+ada", "shoal+ada href", "ada"]
    for corpus in ("all", "slow"):
        cpu: dict[str, list[float]] = {v: [] for v in [*variants, "none"]}
        for _ in range(args.rounds):
            for variant in [*variants, "none"]:
                argv = [sys.executable, __file__, "--child", variant, corpus, str(args.urls)]
                measured = run_measured(variant, argv, args.urls)
                cpu[variant].append(measured.cpu_s)
        base = statistics.median(cpu["none"])
        per_url = {v: (statistics.median(cpu[v]) - base) / args.urls * 1e6 for v in variants}
        print(f"\n{corpus} URLs ({len(CORPUS[corpus])} kinds, {args.urls:,} per run)")
        for variant in variants:
            ratio = per_url[variant] / per_url["shoal"]
            print(f"  {variant:14} {per_url[variant]:6.2f} µs/URL   {ratio:4.2f}x shoal's time")


if __name__ == "__main__":
    main()
