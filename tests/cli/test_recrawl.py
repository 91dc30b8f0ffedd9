"""Recrawling a finished job: conditional requests, 304s kept, changes into history, new
links followed, gone pages counted, --revisit-after choosing only old results. Every
claim is checked at the testweb server (what it received and answered) and in the store."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.testweb import SiteSpec, TestWeb

from .conftest import run_shoal


@pytest.fixture
def web() -> Iterator[TestWeb]:
    # Per test: each one moves the site's revision.
    with TestWeb.run_in_thread(SiteSpec(hosts=2, pages=5)) as site:
        yield site


def crawl_args(web: TestWeb, *more: str) -> tuple[str, ...]:
    return ("crawl", web.url(0, "/rev/0"), "--ignore-robots", "--job", "rev", *more)


def results(db: Path) -> dict[str, tuple[int | None, str | None, str | None, str | None, float]]:
    """url → (status, error_kind, etag, body_hash, fetched_at) of the job's current results."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT url, status, error_kind, etag, body_hash, fetched_at FROM results"
        ).fetchall()
    return {url: tuple(rest) for url, *rest in rows}  # type: ignore[misc]


def history(db: Path) -> dict[str, list[tuple[int | None, str | None]]]:
    """url → [(status, etag), ...] of the results recrawls replaced, oldest first."""
    found: dict[str, list[tuple[int | None, str | None]]] = {}
    with sqlite3.connect(db) as conn:
        for url, status, etag in conn.execute(
            "SELECT url, status, etag FROM result_history ORDER BY id"
        ):
            found.setdefault(url, []).append((status, etag))
    return found


def recrawl_counts(stderr: str) -> tuple[int, int, int, int]:
    """(unchanged, changed, new, gone) from the summary's recrawl line."""
    match = re.search(r"recrawl\s+(\d+) unchanged, (\d+) changed, (\d+) new, (\d+) gone", stderr)
    assert match is not None, stderr
    unchanged, changed, new, gone = (int(n) for n in match.groups())
    return unchanged, changed, new, gone


def rev_requests(web: TestWeb) -> list[tuple[str, str | None, str | None]]:
    """(path, If-None-Match, If-Modified-Since) of every /rev/ request the server saw."""
    return [
        (seen.path, seen.header("If-None-Match"), seen.header("If-Modified-Since"))
        for seen in web.seen()
        if seen.path.startswith("/rev/")
    ]


def test_a_recrawl_asks_conditionally_keeps_304s_replaces_changes_and_follows_new_links(
    web: TestWeb, tmp_path: Path
) -> None:
    db = tmp_path / "shoal.db"
    first = run_shoal(*crawl_args(web), "--quiet", "--save-bodies", cwd=tmp_path)
    assert first.code == 0, first.stderr
    before = results(db)
    assert set(before) == {web.url(0, f"/rev/{n}") for n in range(6)}
    assert all(etag is not None and status == 200 for status, _, etag, _, _ in before.values())
    with sqlite3.connect(db) as conn:
        assert (
            conn.execute("SELECT count(*) FROM results WHERE last_modified IS NULL").fetchone()[0]
            == 0
        )
    assert web.revisions().conditional == 0

    web.reset_stats()
    web.set_revision(1)
    again = run_shoal(*crawl_args(web, "--recrawl", "-o", "after.jsonl"), cwd=tmp_path)
    assert again.code == 0, again.stderr

    # At the server: every page the job had was asked with its own validators.
    asked = {path: (inm, ims) for path, inm, ims in rev_requests(web) if inm or ims}
    assert set(asked) == {f"/rev/{n}" for n in range(6)}
    for n in range(6):
        assert asked[f"/rev/{n}"][0] == f'"p{n}-v0"'
        assert asked[f"/rev/{n}"][1] is not None
    counts = web.revisions()
    assert counts.conditional == 6
    assert counts.not_modified == 2  # /rev/1 and /rev/3 did not change

    after = results(db)
    # 304: the result is kept as it was, body included, only confirmed later.
    for n in (1, 3):
        url = web.url(0, f"/rev/{n}")
        assert after[url][:4] == before[url][:4]
        assert after[url][4] > before[url][4]
    # Changed pages replaced their results; the old ones are in the history.
    replaced = history(db)
    for n in (0, 2, 4):
        url = web.url(0, f"/rev/{n}")
        assert after[url][2] == f'"p{n}-v1"' and after[url][3] != before[url][3]
        assert replaced[url] == [(200, f'"p{n}-v0"')]
    # Gone: /rev/5 answers 410 now; its 200 is in the history.
    gone = web.url(0, "/rev/5")
    assert after[gone][0] == 410 and replaced[gone] == [(200, '"p5-v0"')]
    # New links were followed within the host scope; the other host's page was not.
    assert {web.url(0, "/rev/6"), web.url(0, "/rev/7")} <= set(after)
    assert web.stats().hosts[1].requests == 0
    assert len(after) == 8
    assert recrawl_counts(again.stderr) == (2, 3, 2, 1)

    # The export holds each URL once, with its current result.
    exported = {
        row["url"]: row["status"]
        for row in map(json.loads, (tmp_path / "after.jsonl").read_text().splitlines())
    }
    assert len(exported) == 8 and exported[gone] == 410

    # Bodies of unchanged pages are still in the store.
    with sqlite3.connect(db) as conn:
        for n in (1, 3):
            body_hash = after[web.url(0, f"/rev/{n}")][3]
            assert conn.execute("SELECT 1 FROM bodies WHERE hash = ?", (body_hash,)).fetchone()


def test_history_keeps_the_last_n_results_per_url(web: TestWeb, tmp_path: Path) -> None:
    db = tmp_path / "shoal.db"
    assert run_shoal(*crawl_args(web), "--quiet", cwd=tmp_path).code == 0
    for revision in (1, 2, 3):
        web.set_revision(revision)
        ran = run_shoal("recrawl", "rev", "--keep-history", "2", "--quiet", cwd=tmp_path)
        assert ran.code == 0, ran.stderr
    kept = history(db)[web.url(0, "/rev/2")]
    assert kept == [(200, '"p2-v1"'), (200, '"p2-v2"')]
    assert results(db)[web.url(0, "/rev/2")][2] == '"p2-v3"'
    # An unchanged page never had a history.
    assert web.url(0, "/rev/1") not in history(db)


def test_revisit_after_recrawls_only_results_older_than_the_age(
    web: TestWeb, tmp_path: Path
) -> None:
    db = tmp_path / "shoal.db"
    assert run_shoal(*crawl_args(web), "--quiet", cwd=tmp_path).code == 0
    old, fresh = web.url(0, "/rev/2"), web.url(0, "/rev/4")
    with sqlite3.connect(db) as conn:
        # Two days old: the one result a 1d threshold selects.
        conn.execute(
            "UPDATE results SET fetched_at = ? WHERE url = ?", (time.time() - 2 * 86_400, old)
        )
        conn.execute("UPDATE results SET fetched_at = ? WHERE url <> ?", (time.time(), old))
    web.reset_stats()
    web.set_revision(1)
    ran = run_shoal(*crawl_args(web, "--revisit-after", "1d"), cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    asked = [path for path, inm, _ in rev_requests(web) if inm]
    assert asked == ["/rev/2"]
    after = results(db)
    assert after[old][2] == '"p2-v1"'
    assert after[fresh][2] == '"p4-v0"'  # changed at the server, not asked: as it was
    assert recrawl_counts(ran.stderr) == (0, 1, 0, 0)


def test_recrawl_refuses_what_it_cannot_go_with(web: TestWeb, tmp_path: Path) -> None:
    assert run_shoal(*crawl_args(web), "--quiet", cwd=tmp_path).code == 0
    for extra in (("--fresh",), ("--refetch", "all")):
        ran = run_shoal(*crawl_args(web, "--recrawl", *extra), cwd=tmp_path)
        assert ran.code == 2
        assert len(ran.stderr.strip().splitlines()) == 1 and "--recrawl" in ran.stderr
    bad = run_shoal(*crawl_args(web, "--revisit-after", "soon"), cwd=tmp_path)
    assert bad.code == 2 and "duration" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = run_shoal("recrawl", "nope", cwd=tmp_path)
    assert missing.code == 2 and "no job 'nope'" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_shoal_recrawl_on_every_backend(web: TestWeb, tmp_path: Path, store_location: str) -> None:
    """``shoal recrawl JOB`` runs with the job's stored settings, on SQLite and PostgreSQL."""
    store = ("--store", store_location)
    assert run_shoal(*crawl_args(web), *store, "--quiet", cwd=tmp_path).code == 0
    web.reset_stats()
    web.set_revision(1)
    ran = run_shoal("recrawl", "rev", *store, "-o", "now.csv", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert "recrawling 6 finished URLs" in ran.stderr
    assert recrawl_counts(ran.stderr) == (2, 3, 2, 1)
    assert web.revisions() == (6, 2)
    lines = (tmp_path / "now.csv").read_text().splitlines()
    assert len(lines) == 1 + 8  # a header, then each URL once
    # Nothing changed since: a second recrawl finds every page as it was.
    web.reset_stats()
    again = run_shoal("recrawl", "rev", *store, cwd=tmp_path)
    assert again.code == 0, again.stderr
    # /rev/5 is still gone (a 410 has no validators: asked plainly, 410 again, unchanged);
    # the others are asked conditionally and answer 304.
    assert recrawl_counts(again.stderr) == (8, 0, 0, 0)
    assert web.revisions() == (7, 7)


def test_recrawl_from_the_environment_and_a_toml_file(web: TestWeb, tmp_path: Path) -> None:
    assert run_shoal(*crawl_args(web), "--quiet", cwd=tmp_path).code == 0
    web.set_revision(1)
    web.reset_stats()
    ran = run_shoal(*crawl_args(web), cwd=tmp_path, env={"SHOAL_RECRAWL": "1"})
    assert ran.code == 0, ran.stderr
    assert web.revisions().conditional == 6
    config = tmp_path / "shoal.toml"
    config.write_text('[crawl]\nrevisit_after = "1d"\nkeep_history = 5\n')
    web.reset_stats()
    fresh = run_shoal("--config", str(config), *crawl_args(web), cwd=tmp_path)
    assert fresh.code == 0, fresh.stderr
    assert web.revisions().conditional == 0  # everything was fetched just now
    assert recrawl_counts(fresh.stderr) == (0, 0, 0, 0)
    assert "keep_history 3 → 5" in fresh.stderr


def test_a_fetch_job_recrawls_its_list_and_a_new_url_is_new(web: TestWeb, tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{web.url(0, '/rev/1')}\n{web.url(0, '/rev/2')}\n")
    fetch = ("fetch", str(urls), "--job", "list")
    assert run_shoal(*fetch, "--quiet", cwd=tmp_path).code == 0
    web.set_revision(1)
    web.reset_stats()
    urls.write_text(urls.read_text() + f"{web.url(0, '/rev/6')}\n")
    ran = run_shoal(*fetch, "--recrawl", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert recrawl_counts(ran.stderr) == (1, 1, 1, 0)
    assert web.revisions() == (2, 1)
    assert [path for path, inm, _ in rev_requests(web) if inm is None] == ["/rev/6"]
