"""``shoal crawl`` end to end: real process, real site, real store file."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.testweb import PageRef, SiteSpec, TestWeb, links_from

from .conftest import result_rows, run_shoal, shoal_argv
from .test_fetch_command import _wait_rows


def blocked_path(path: str) -> bool:
    return path.startswith("/page/7")  # the site's robots.txt: Disallow: /page/7


def expected_with_robots(web: TestWeb, host: int) -> set[str]:
    """Pages a host-scoped crawl records: disallowed pages are recorded, not expanded."""
    seen = {PageRef(host, None)}
    frontier = [PageRef(host, None)]
    while frontier:
        ref = frontier.pop()
        if blocked_path(ref.path):
            continue
        for target in links_from(web.spec, ref):
            if target.host == host and target not in seen:
                seen.add(target)
                frontier.append(target)
    return {web.base_urls[ref.host] + ref.path for ref in seen}


@pytest.fixture(scope="module")
def crawl_site() -> Iterator[TestWeb]:
    spec = SiteSpec(
        hosts=3,
        pages=120,
        links_per_page=4,
        cross_host_links=0.2,
        latency_ms=5,
        robots="User-agent: *\nDisallow: /page/7\n",
    )
    with TestWeb.run_in_thread(spec) as web:
        yield web


def test_crawl_host_scope_with_robots(crawl_site: TestWeb, tmp_path: Path) -> None:
    seed = crawl_site.url(0, "/")
    ran = run_shoal("crawl", seed, "--job", "site", "-o", "site.jsonl", "--quiet", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    rows = result_rows(tmp_path / "shoal.db", "site")
    expected = expected_with_robots(crawl_site, 0)
    assert {u for u, _, _ in rows} == expected
    blocked = {u for u, _, kind in rows if kind == "robots_disallowed"}
    assert blocked == {u for u in expected if blocked_path("/" + u.split("/", 3)[3])}
    assert blocked
    assert len((tmp_path / "site.jsonl").read_text().splitlines()) == len(expected)
    stats = run_shoal("stats", "--job", "site", cwd=tmp_path)
    assert stats.code == 0 and "robots_disallowed" in stats.stdout
    # Skipped by robots.txt is not failed: the summary counts them apart.
    lines = {line.split(None, 1)[0]: line for line in stats.stdout.splitlines() if line.strip()}
    assert lines["failed"].split()[-1] == "0"
    assert lines["skipped"].split() == ["skipped", "robots_disallowed", f"{len(blocked):,}"]


def test_a_missing_sitemap_is_counted_as_such_not_failed(tmp_path: Path) -> None:
    spec = SiteSpec(hosts=1, pages=12, links_per_page=2, sitemaps=False, robots="")
    with TestWeb.run_in_thread(spec) as web:
        seed = web.url(0, "/")
        ran = run_shoal("crawl", seed, "--sitemaps", "--job", "maps", "--quiet", cwd=tmp_path)
        assert ran.code == 0, ran.stderr
        served = {record.path: record.status for record in web.stats().hosts[0].log}
    assert served["/sitemap.xml"] == 404  # looked for, and not there
    rows = result_rows(tmp_path / "shoal.db", "maps")
    sitemap = web.url(0, "/sitemap.xml")
    assert (sitemap, None, "sitemap_missing") in rows
    assert [row for row in rows if row[0] != sitemap and row[1] != 200] == []
    stats = run_shoal("stats", "--job", "maps", cwd=tmp_path)
    lines = {line.split(None, 1)[0]: line for line in stats.stdout.splitlines() if line.strip()}
    assert lines["failed"].split()[-1] == "0"
    assert lines["skipped"].split() == ["skipped", "sitemap_missing", "1"]
    assert "4xx" not in stats.stdout


def test_crawl_usage_errors(tmp_path: Path) -> None:
    for args in (
        ("crawl",),
        ("crawl", "ftp://x/"),
        ("crawl", "http://x/", "--scope", "bogus"),
        ("crawl", "http://x/", "--include", "("),
    ):
        ran = run_shoal(*args, cwd=tmp_path)
        assert ran.code == 2, (args, ran.stderr)
        assert "Traceback" not in ran.stderr


def test_crawl_kill_9_resume_equals_clean_crawl(crawl_site: TestWeb, tmp_path: Path) -> None:
    seed = crawl_site.url(0, "/")
    common = ("--scope", "any", "--per-host", "3", "--quiet", "--job", "k")
    clean = tmp_path / "clean"
    clean.mkdir()
    assert run_shoal("crawl", seed, *common, cwd=clean).code == 0
    expected = result_rows(clean / "shoal.db", "k")
    assert len(expected) > 150

    db = tmp_path / "shoal.db"
    kills = 0
    for kill_after in (3, 60, 150):
        proc = subprocess.Popen(
            shoal_argv("crawl", seed, *common),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not _wait_rows(db, "k", at_least=kill_after, proc=proc):
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        kills += 1
    assert kills >= 2
    ran = run_shoal("crawl", seed, *common, cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert result_rows(db, "k") == expected


def test_a_redirect_chain_killed_midway_still_ends_at_max_redirects(tmp_path: Path) -> None:
    # Every hop is its own row; the chain so far is kept in memory and, for a run that
    # did not see it (this one, after kill -9), read back from the row that redirected.
    with TestWeb.run_in_thread(SiteSpec(hosts=1, pages=3, robots="")) as web:
        seed = web.url(0, "/redirect-endless/0")
        common = ("--max-redirects", "5", "--delay", "0.3", "--quiet", "--job", "chain")
        db = tmp_path / "shoal.db"
        kills = 0
        for kill_after in (2, 4):
            proc = subprocess.Popen(
                shoal_argv("crawl", seed, *common),
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if _wait_rows(db, "chain", at_least=kill_after, proc=proc):
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=30)
        assert kills == 2
        ran = run_shoal("crawl", seed, *common, cwd=tmp_path)
        assert ran.code == 0, ran.stderr
        served = web.stats().hosts[0].requests
    hops = [web.url(0, f"/redirect-endless/{n}") for n in range(7)]
    rows = result_rows(db, "chain")
    assert rows == [(url, 302, None) for url in hops[:5]] + [(hops[5], 302, "too_many_redirects")]
    assert served <= len(hops)  # each hop fetched once (one may have been cut off by a kill)
    with sqlite3.connect(db) as conn:
        chains = dict(conn.execute("SELECT url, redirects FROM results"))
    assert json.loads(chains[hops[5]]) == hops[:6]
