"""Running a job again: resume, apply, refuse, start over, fetch again; one command per job."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.testweb import SiteSpec, TestWeb

from .conftest import result_rows, run_shoal, shoal_argv
from .test_fetch_command import _wait_rows


@pytest.fixture(scope="module")
def web() -> Iterator[TestWeb]:
    with TestWeb.run_in_thread(SiteSpec(hosts=2, pages=60, links_per_page=3)) as site:
        yield site


def requests_seen(web: TestWeb) -> int:
    return sum(host.requests for host in web.stats().hosts)


def job_names(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [name for (name,) in conn.execute("SELECT name FROM jobs ORDER BY id")]


def test_same_command_resumes_and_fetches_nothing_again(web: TestWeb, tmp_path: Path) -> None:
    seed = web.url(0, "/")
    args = ("crawl", seed, "--depth", "1", "--ignore-robots")
    assert run_shoal(*args, "--quiet", cwd=tmp_path).code == 0
    web.reset_stats()
    again = run_shoal(*args, cwd=tmp_path)
    assert again.code == 0, again.stderr
    assert "resuming job" in again.stderr and "applying" not in again.stderr
    assert requests_seen(web) == 0


def test_a_raised_depth_applies_and_the_result_set_grows_to_the_new_depth(
    web: TestWeb, tmp_path: Path
) -> None:
    seed = web.url(0, "/")
    common = ("crawl", seed, "--ignore-robots", "--job", "deep")
    assert run_shoal(*common, "--depth", "1", "--quiet", cwd=tmp_path).code == 0
    depth1 = {url for url, _, _ in result_rows(tmp_path / "shoal.db", "deep")}
    assert depth1 == web.expected_pages(host=0, depth=1, cross_host=False)

    ran = run_shoal(*common, "--depth", "2", "-o", "deep.jsonl", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert "applying changed settings: depth 1 → 2" in ran.stderr
    rows = result_rows(tmp_path / "shoal.db", "deep")
    assert {url for url, _, _ in rows} == web.expected_pages(host=0, depth=2, cross_host=False)
    assert len(rows) == len({url for url, _, _ in rows})
    written = [
        json.loads(line)["url"] for line in (tmp_path / "deep.jsonl").read_text().splitlines()
    ]
    assert sorted(written) == sorted(url for url, _, _ in rows)


def test_an_incompatible_rerun_is_refused_naming_the_settings_and_the_ways_out(
    web: TestWeb, tmp_path: Path
) -> None:
    seed = web.url(0, "/")
    first = ("crawl", seed, "--depth", "1", "--ignore-robots", "--job", "j", "--quiet")
    assert run_shoal(*first, cwd=tmp_path).code == 0
    before = result_rows(tmp_path / "shoal.db", "j")
    ran = run_shoal(*first, "--scope", "prefix", "--exclude", "x", cwd=tmp_path)
    assert ran.code == 2
    message = ran.stderr.strip()
    assert message.startswith("shoal: job 'j'") and len(message.splitlines()) == 1
    assert "scope" in message and "exclude" in message
    assert "--job" in message and "--fresh" in message
    lowered = run_shoal(*first[:-1], "--depth", "0", cwd=tmp_path)
    assert lowered.code == 2 and "depth (lowered from 1 to 0)" in lowered.stderr
    assert result_rows(tmp_path / "shoal.db", "j") == before


def test_a_default_name_never_resumes_a_job_with_other_settings(
    web: TestWeb, tmp_path: Path
) -> None:
    """The sub-crawl of one directory gets a job of its own, and -o holds only it."""
    full = run_shoal("crawl", web.url(0, "/"), "--depth", "1", "--ignore-robots", cwd=tmp_path)
    assert full.code == 0, full.stderr
    seed = web.url(0, "/page/3")
    sub = run_shoal(
        "crawl",
        seed,
        "--scope",
        "prefix",
        "--depth",
        "1",
        "--ignore-robots",
        "-o",
        "sub.jsonl",
        cwd=tmp_path,
    )
    assert sub.code == 0, sub.stderr
    names = job_names(tmp_path / "shoal.db")
    assert len(names) == 2 and names[1] == f"{names[0]}-2"
    assert f"this is job {names[1]}" in sub.stderr
    written = [
        json.loads(line)["url"] for line in (tmp_path / "sub.jsonl").read_text().splitlines()
    ]
    assert sorted(written) == sorted(u for u, _, _ in result_rows(tmp_path / "shoal.db", names[1]))
    assert all(url.startswith(web.url(0, "/page/")) for url in written)


def test_a_new_list_under_the_same_file_name_is_a_new_job(web: TestWeb, tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    first = [web.url(0, f"/page/{n}") for n in range(5)]
    second = [web.url(1, f"/page/{n}") for n in range(3)]
    urls.write_text("\n".join(first) + "\n")
    assert run_shoal("fetch", "urls.txt", "--quiet", cwd=tmp_path).code == 0
    urls.write_text("\n".join(second) + "\n")
    ran = run_shoal("fetch", "urls.txt", "-o", "b.jsonl", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert job_names(tmp_path / "shoal.db") == ["urls", "urls-2"]
    written = [json.loads(line)["url"] for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert sorted(written) == sorted(second)
    # The first list again: its own job, resumed.
    urls.write_text("\n".join(first) + "\n")
    again = run_shoal("fetch", "urls.txt", cwd=tmp_path)
    assert "resuming job urls:" in again.stderr


def test_fresh_starts_the_job_over(web: TestWeb, tmp_path: Path) -> None:
    args = ("crawl", web.url(1, "/"), "--depth", "1", "--ignore-robots", "--job", "f")
    assert run_shoal(*args, "--quiet", cwd=tmp_path).code == 0
    before = result_rows(tmp_path / "shoal.db", "f")
    web.reset_stats()
    ran = run_shoal(*args, "--fresh", "--save-bodies", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert "started over" in ran.stderr
    assert requests_seen(web) >= len(before)
    assert result_rows(tmp_path / "shoal.db", "f") == before
    with sqlite3.connect(tmp_path / "shoal.db") as conn:
        (bodies,) = conn.execute(
            "SELECT count(*) FROM results WHERE body_hash IS NOT NULL"
        ).fetchone()
    assert bodies == len([r for r in before if r[1] == 200])


def test_refetch_failed_fetches_only_what_failed(web: TestWeb, tmp_path: Path) -> None:
    key = f"refetch-{time.monotonic_ns()}"
    good = [web.url(0, f"/page/{n}") for n in range(4)]
    flaky = web.url(0, f"/flaky/{key}?fail=1")
    (tmp_path / "in.txt").write_text("\n".join([*good, flaky]) + "\n")
    args = ("fetch", "in.txt", "--retries", "0", "--job", "r")
    assert run_shoal(*args, "--quiet", cwd=tmp_path).code == 0
    statuses = {url: status for url, status, _ in result_rows(tmp_path / "shoal.db", "r")}
    assert statuses[flaky] == 503
    before = requests_seen(web)  # (reset_stats would also reset the flaky page's count)
    ran = run_shoal(*args, "--refetch", "failed", "-o", "r.jsonl", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert "1 finished URLs to fetch again" in ran.stderr
    assert requests_seen(web) - before == 1
    statuses = {url: status for url, status, _ in result_rows(tmp_path / "shoal.db", "r")}
    assert statuses[flaky] == 200 and len(statuses) == 5
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["url"] for line in lines) == sorted(statuses)


def test_a_second_command_on_a_running_job_is_refused(tmp_path: Path) -> None:
    spec = SiteSpec(hosts=1, pages=300, latency_ms=40)
    with TestWeb.run_in_thread(spec) as slow:
        urls = tmp_path / "urls.txt"
        urls.write_text("\n".join(slow.url(0, f"/page/{n}") for n in range(300)) + "\n")
        args = ("fetch", "urls.txt", "--per-host", "1", "--job", "busy", "--quiet")
        first = subprocess.Popen(
            shoal_argv(*args), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            assert _wait_rows(tmp_path / "shoal.db", "busy", at_least=3, proc=first)
            second = run_shoal(*args, cwd=tmp_path)
            assert second.code == 2
            assert f"pid {first.pid}" in second.stderr
            assert "shoal worker" in second.stderr
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        # A dead holder never blocks.
        ran = run_shoal(*args, "--per-host", "8", cwd=tmp_path, timeout=300)
        assert ran.code == 0, ran.stderr
        assert len(result_rows(tmp_path / "shoal.db", "busy")) == 300


def test_output_holds_the_whole_result_set_after_an_interrupted_run(
    web: TestWeb, tmp_path: Path
) -> None:
    urls = [web.url(h, f"/page/{n}") for h in range(2) for n in range(60)]
    (tmp_path / "in.txt").write_text("\n".join(urls) + "\n")
    args = ("fetch", "in.txt", "--per-host", "1", "--delay", "0.02", "--job", "o")
    proc = subprocess.Popen(
        shoal_argv(*args, "-o", "first.jsonl", "--quiet"),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert _wait_rows(tmp_path / "shoal.db", "o", at_least=10, proc=proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    partial = (tmp_path / "first.jsonl").read_text().splitlines()
    assert 10 <= len(partial) < len(urls)
    ran = run_shoal(*args, "--delay", "0", "-o", "all.jsonl", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    written = [
        json.loads(line)["url"] for line in (tmp_path / "all.jsonl").read_text().splitlines()
    ]
    assert sorted(written) == sorted(urls)
    assert "all of them in all.jsonl" in ran.stderr


def test_strict_rejection_leaves_no_job_behind(web: TestWeb, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text(web.url(0, "/page/1") + "\nnot a url\n")
    ran = run_shoal("fetch", "in.txt", "--strict", cwd=tmp_path)
    assert ran.code == 4
    assert "in.txt:2:" in ran.stderr
    db = tmp_path / "shoal.db"
    assert not db.exists() or job_names(db) == []


def test_a_seed_without_a_scheme_is_crawled_as_http_and_said_so(
    web: TestWeb, tmp_path: Path
) -> None:
    bare = web.url(0, "/").removeprefix("http://")
    ran = run_shoal("crawl", bare, "--depth", "0", "--ignore-robots", "--job", "s", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert "has no scheme; crawling http://" in ran.stderr
    assert [u for u, _, _ in result_rows(tmp_path / "shoal.db", "s")] == [web.url(0, "/")]


def test_output_formats_json_array_and_unknown_suffixes(web: TestWeb, tmp_path: Path) -> None:
    urls = [web.url(0, f"/page/{n}") for n in range(6)]
    (tmp_path / "in.txt").write_text("\n".join(urls) + "\n")
    ran = run_shoal("fetch", "in.txt", "-o", "out.json", "--quiet", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    array = json.loads((tmp_path / "out.json").read_text())
    assert sorted(row["url"] for row in array) == sorted(urls)

    unknown = run_shoal("fetch", "in.txt", "-o", "out.txt", cwd=tmp_path)
    assert unknown.code == 2
    assert ".jsonl" in unknown.stderr and "--format" in unknown.stderr
    assert not (tmp_path / "out.txt").exists()
    chosen = run_shoal("fetch", "in.txt", "-o", "out.txt", "--format", "jsonl", cwd=tmp_path)
    assert chosen.code == 0, chosen.stderr
    lines = (tmp_path / "out.txt").read_text().splitlines()
    assert sorted(json.loads(line)["url"] for line in lines) == sorted(urls)
