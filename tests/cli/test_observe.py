"""``--debug`` shows slow callbacks; ``--profile`` profiles the command and its fetch
processes: for fetch, crawl, worker and serve."""

from __future__ import annotations

import pstats
import signal
import subprocess
from pathlib import Path

from shoal.testweb import SiteSpec, TestWeb

from ..service.served import client, connect, follow_until, shoal_serve
from .conftest import result_rows, run_shoal, shoal_argv
from .test_fetch_command import _wait_rows, write_urls


def _urls(web: TestWeb, tmp_path: Path, count: int) -> None:
    lines = [web.url(n % 2, f"/page/{n % 50}?n={n}") for n in range(count)]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")


def test_profile_writes_the_command_and_every_fetch_process(tmp_path: Path) -> None:
    with TestWeb.run_in_thread(SiteSpec(hosts=2, pages=50)) as web:
        _urls(web, tmp_path, 300)
        ran = run_shoal(
            "fetch",
            "in.txt",
            "--processes",
            "2",
            "--profile",
            "run.html",
            "--quiet",
            cwd=tmp_path,
        )
        assert ran.code == 0, ran.stderr
        report = (tmp_path / "run.html").read_text()
        assert "pyinstrument" in report.lower()
        children = sorted(tmp_path.glob("run.fetch-*.html"))
        assert len(children) == 2
        ran = run_shoal(
            "fetch",
            "in.txt",
            "--processes",
            "0",
            "--profile",
            "run.prof",
            "--job",
            "again",
            "--quiet",
            cwd=tmp_path,
        )
        assert ran.code == 0, ran.stderr
        stats = pstats.Stats(str(tmp_path / "run.prof"))
        functions = {name for (_, _, name) in stats.stats}  # type: ignore[attr-defined]
        assert "run_job" in functions or "_run_job" in functions


def test_debug_logs_slow_callbacks_with_their_task(tmp_path: Path) -> None:
    with TestWeb.run_in_thread(SiteSpec(hosts=2, pages=50)) as web:
        _urls(web, tmp_path, 200)
        ran = run_shoal(
            "fetch",
            "in.txt",
            "--processes",
            "0",
            "--debug",
            "--slow-callback-ms",
            "1",
            "--quiet",
            cwd=tmp_path,
        )
    assert ran.code == 0, ran.stderr
    slow = [line for line in ran.stderr.splitlines() if line.startswith("shoal: asyncio: ")]
    assert slow, ran.stderr[-2000:]
    assert any("Task" in line or "Handle" in line for line in slow)
    assert any("took" in line for line in slow)


def _slow_callbacks(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if line.startswith("shoal: asyncio: ") and "took" in line
    ]


def test_a_worker_debugs_and_profiles_itself_and_its_fetch_process(tmp_path: Path) -> None:
    with TestWeb.run_in_thread(SiteSpec(hosts=2, pages=20)) as web:
        urls = [web.url(n % 2, f"/delay/{40 + n % 20}?n={n}") for n in range(80)]
        write_urls(tmp_path / "work.txt", urls)
        common = ("--per-host", "2", "--concurrency", "4", "--quiet")
        starter = subprocess.Popen(
            shoal_argv("fetch", "work.txt", *common, "--processes", "0"),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        db = tmp_path / "shoal.db"
        assert _wait_rows(db, "work", at_least=3, proc=starter)
        starter.send_signal(signal.SIGINT)
        assert starter.wait(timeout=60) == 130
        ran = run_shoal(
            "worker",
            "--store",
            str(db),
            "--job",
            "work",
            "--processes",
            "1",
            "--profile",
            "worker.html",
            "--debug",
            "--slow-callback-ms",
            "1",
            "-q",
            cwd=tmp_path,
        )
    assert ran.code == 0, ran.stderr
    assert sorted(u for u, _, _ in result_rows(db, "work")) == sorted(urls)
    assert "pyinstrument" in (tmp_path / "worker.html").read_text().lower()
    assert len(list(tmp_path.glob("worker.fetch-*.html"))) == 1
    assert _slow_callbacks(ran.stderr), ran.stderr[-2000:]


async def test_serve_debugs_and_profiles_until_sigterm(tmp_path: Path) -> None:
    profile = tmp_path / "serve.prof"
    async with TestWeb(SiteSpec(hosts=2, pages=50)) as web:
        urls = [web.url(n % 2, f"/page/{n % 50}?n={n}") for n in range(200)]
        async with shoal_serve(
            str(tmp_path / "s.db"),
            "--allow-private",
            "--profile",
            str(profile),
            "--debug",
            "--slow-callback-ms",
            "1",
        ) as served:
            async with client(served) as http:
                body = {"name": "f", "kind": "fetch", "urls": urls}
                assert (await http.post("/jobs", json=body)).status_code == 201
            async with connect(served.ws_url + "/jobs/f/events") as ws:
                await follow_until(ws, "f", "finished")
            # Graceful on SIGTERM, then the profile is written and the exit is clean.
            assert await served.terminate() == 0
    log = "".join(served.log)
    assert _slow_callbacks(log), log[-2000:]
    assert "Traceback" not in log
    stats = pstats.Stats(str(profile))
    functions = {name for (_, _, name) in stats.stats}  # type: ignore[attr-defined]
    assert "create_job" in functions
    assert "publish_pages" in functions


def test_a_profile_that_cannot_be_written_is_refused_before_the_run(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("http://127.0.0.1:9/\n")
    missing = tmp_path / "missing" / "run.prof"
    for command in (["fetch", "in.txt"], ["worker", "--job", "x"], ["serve", "--port", "0"]):
        ran = run_shoal(*command, "--profile", str(missing), cwd=tmp_path)
        assert ran.code == 2, ran.stderr
        assert ran.stderr.strip().splitlines() == [
            f"shoal: Invalid value for '--profile': cannot write {missing}: "
            f"{missing.parent} does not exist (see 'shoal {command[0]} --help')"
        ]
    assert not (tmp_path / "shoal.db").exists()  # refused before the store was touched
