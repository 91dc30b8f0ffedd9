"""``--debug`` shows slow callbacks; ``--profile`` profiles the command and its fetch processes."""

from __future__ import annotations

import pstats
from pathlib import Path

from shoal.testweb import SiteSpec, TestWeb

from .conftest import run_shoal


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
