"""``shoal fetch`` end to end: real process, real site, real store file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from shoal.testweb import TestWeb

from .conftest import result_rows, run_shoal, shoal_argv


def write_urls(path: Path, urls: list[str]) -> Path:
    path.write_text("".join(u + "\n" for u in urls))
    return path


def test_fetch_records_everything_and_streams_output(site: TestWeb, tmp_path: Path) -> None:
    urls = [site.url(h, f"/page/{n}") for h in range(3) for n in range(20)]
    urls.append(site.url(0, "/status/404"))
    write_urls(tmp_path / "urls.txt", urls)
    ran = run_shoal("fetch", "urls.txt", "-o", "out.jsonl", "--quiet", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    rows = result_rows(tmp_path / "shoal.db", "urls")
    assert sorted(u for u, _, _ in rows) == sorted(urls)
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(r["url"] for r in lines) == sorted(urls)
    for key in (
        "url",
        "final_url",
        "status",
        "error_kind",
        "error",
        "depth",
        "parent_url",
        "content_type",
        "bytes",
        "attempts",
        "elapsed_ms",
        "fetched_at",
    ):
        assert key in lines[0]
    assert {r["status"] for r in lines if r["url"].endswith("/status/404")} == {404}

    again = run_shoal("fetch", "urls.txt", "-o", "out.jsonl", "--quiet", cwd=tmp_path)
    assert again.code == 0
    assert len(result_rows(tmp_path / "shoal.db", "urls")) == len(urls)
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == len(urls)


def test_invalid_lines_reported_with_line_numbers(site: TestWeb, tmp_path: Path) -> None:
    good = site.url(0, "/page/1")
    (tmp_path / "mixed.txt").write_text(
        f"# a comment\n{good}\nftp://example.org/file\n\nnot a url\n"
        f'{{"url": "{site.url(1, "/page/2")}", "method": "GET"}}\n{{"url": 5}}\n'
    )
    ran = run_shoal("fetch", "mixed.txt", "--quiet", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert ":3:" in ran.stderr and ":5:" in ran.stderr and ":7:" in ran.stderr
    assert "3 invalid input line(s)" in ran.stderr
    assert "Traceback" not in ran.stderr
    assert len(result_rows(tmp_path / "shoal.db", "mixed")) == 2

    strict = run_shoal("fetch", "mixed.txt", "--strict", "--job", "strict", "--quiet", cwd=tmp_path)
    assert strict.code == 4
    assert result_rows(tmp_path / "shoal.db", "strict") == []


def test_stdin_input_and_csv_export(site: TestWeb, tmp_path: Path) -> None:
    urls = [site.url(2, f"/page/{n}") for n in range(5)]
    ran = run_shoal("fetch", "-", "--job", "piped", "--quiet", cwd=tmp_path, stdin="\n".join(urls))
    assert ran.code == 0, ran.stderr
    exported = run_shoal("export", "--job", "piped", "-o", "piped.csv", cwd=tmp_path)
    assert exported.code == 0, exported.stderr
    lines = (tmp_path / "piped.csv").read_text().splitlines()
    assert lines[0].startswith("url,final_url,status,error_kind")
    assert len(lines) == 6
    stats = run_shoal("stats", "--job", "piped", cwd=tmp_path)
    assert stats.code == 0 and "done" in stats.stdout


def test_usage_and_store_errors_are_one_line(site: TestWeb, tmp_path: Path) -> None:
    write_urls(tmp_path / "u.txt", [site.url(0, "/page/1")])
    cases = [
        (("fetch", "u.txt", "--concurrency", "0"), 2),
        (("fetch", "missing.txt"), 2),
        (("fetch", "u.txt", "--bogus-flag"), 2),
        (("fetch", "u.txt", "--max-bytes", "lots"), 2),
        (("fetch", "u.txt", "--store", "/nonexistent-dir/x/shoal.db"), 3),
        (("fetch", "u.txt", "-o", "out.unknown"), 2),
        (("fetch", "u.txt", "--http", "curl"), 2),
        (("fetch", "u.txt", "--http", "aiohttp", "--http2"), 2),
        (("export", "--job", "nope", "-o", "x.jsonl"), 3),
        (("stats", "--store", "nothing-here.db"), 3),
    ]
    (tmp_path / "garbage.db").write_bytes(b"this is not a database at all" * 100)
    cases.append((("fetch", "u.txt", "--store", "garbage.db"), 3))
    for args, code in cases:
        ran = run_shoal(*args, cwd=tmp_path)
        assert ran.code == code, (args, ran.code, ran.stderr)
        assert "Traceback" not in ran.stderr, ran.stderr


def test_help_explains_defaults_and_exit_codes(tmp_path: Path) -> None:
    ran = run_shoal("fetch", "--help", cwd=tmp_path)
    assert ran.code == 0
    for text in (
        "--concurrency",
        "default: 256",
        "--per-host",
        "SHOAL_CONCURRENCY",
        "Exit codes",
        "130",
    ):
        assert text in ran.stdout


def test_sigint_is_graceful_and_resumable(site: TestWeb, tmp_path: Path) -> None:
    urls = [site.url(h, f"/delay/{200 + n}") for h in range(3) for n in range(60)]
    write_urls(tmp_path / "slow.txt", urls)
    proc = subprocess.Popen(
        shoal_argv("fetch", "slow.txt", "--per-host", "2", "--concurrency", "6"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = tmp_path / "shoal.db"
    _wait_rows(db, "slow", at_least=10, proc=proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume" in err
    assert "Traceback" not in err
    partial = result_rows(db, "slow")
    assert 10 <= len(partial) < len(urls)

    ran = run_shoal("fetch", "slow.txt", "--per-host", "6", "--quiet", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert sorted(u for u, _, _ in result_rows(db, "slow")) == sorted(urls)


def test_second_sigint_quits_at_once_and_the_store_stays_consistent(
    site: TestWeb, tmp_path: Path
) -> None:
    urls = [site.url(h, f"/delay/{300 + n}") for h in range(3) for n in range(40)]
    write_urls(tmp_path / "slow.txt", urls)
    proc = subprocess.Popen(
        shoal_argv("fetch", "slow.txt", "--per-host", "2", "--concurrency", "6", "--quiet"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = tmp_path / "shoal.db"
    _wait_rows(db, "slow", at_least=6, proc=proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    ran = run_shoal("fetch", "slow.txt", "--per-host", "6", "--quiet", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    rows = result_rows(db, "slow")
    assert sorted(u for u, _, _ in rows) == sorted(urls)


def test_kill_9_then_rerun_equals_clean_run(site: TestWeb, tmp_path: Path) -> None:
    urls = [site.url(h, f"/delay/{20 + n % 30}?n={n}") for h in range(3) for n in range(150)]
    urls += [site.url(0, "/status/503"), site.url(1, "/status/404")]
    urls += urls[:40]  # duplicates are admitted once
    write_urls(tmp_path / "work.txt", urls)
    common = ("--concurrency", "12", "--per-host", "4", "--retries", "1", "--quiet")

    clean = tmp_path / "clean"
    clean.mkdir()
    write_urls(clean / "work.txt", urls)
    assert run_shoal("fetch", "work.txt", *common, cwd=clean).code == 0
    expected = result_rows(clean / "shoal.db", "work")

    db = tmp_path / "shoal.db"
    kills = 0
    for kill_after in (5, 120, 300):
        proc = subprocess.Popen(
            shoal_argv("fetch", "work.txt", *common),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not _wait_rows(db, "work", at_least=kill_after, proc=proc):
            break  # finished before the kill point
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        kills += 1
    assert kills >= 2, "the job finished before it could be killed twice"
    ran = run_shoal("fetch", "work.txt", *common, cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    got = result_rows(db, "work")
    assert got == expected
    assert len(got) == len({u for u, _, _ in got}) == len(set(urls))  # duplicates admitted once


def _wait_rows(
    db: Path,
    job: str,
    *,
    at_least: int,
    proc: subprocess.Popen[str] | subprocess.Popen[bytes],
    timeout: float = 60,
) -> bool:
    """Wait until the job has ``at_least`` results; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if db.exists():
            try:
                if len(result_rows(db, job)) >= at_least:
                    return True
            except Exception:  # noqa: BLE001 - schema may not exist yet
                pass
        time.sleep(0.02)
    raise AssertionError(f"{job}: fewer than {at_least} results after {timeout} s")


def test_parquet_and_warc_outputs(site: TestWeb, tmp_path: Path) -> None:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    urls = [site.url(0, f"/page/{n}") for n in range(8)] + [site.url(1, "/status/404")]
    write_urls(tmp_path / "arc.txt", urls)
    ran = run_shoal("fetch", "arc.txt", "-o", "live.warc.gz", "--quiet", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert (tmp_path / "live.warc.gz").stat().st_size > 0
    exported = run_shoal("export", "--job", "arc", "-o", "arc.parquet", cwd=tmp_path)
    assert exported.code == 0, exported.stderr
    table = pq.read_table(tmp_path / "arc.parquet")
    assert table.num_rows == len(urls)
    assert sorted(table.column("url").to_pylist()) == sorted(urls)
    warc = run_shoal("export", "--job", "arc", "-o", "arc.warc.gz", cwd=tmp_path)
    assert warc.code == 0, warc.stderr
    check = subprocess.run(
        [sys.executable, "-m", "warcio.cli", "check", str(tmp_path / "arc.warc.gz")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    bodiless = tmp_path / "nobodies"
    bodiless.mkdir()
    write_urls(bodiless / "nb.txt", urls[:2])
    assert run_shoal("fetch", "nb.txt", "--quiet", cwd=bodiless).code == 0
    refused = run_shoal("export", "--job", "nb", "-o", "nb.warc.gz", cwd=bodiless)
    assert refused.code == 2 and "--save-bodies" in refused.stderr
    assert "Traceback" not in refused.stderr
