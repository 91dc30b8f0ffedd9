"""What a newcomer meets first: a closed pipe, --config after the subcommand, a misspelled
command, the -o help."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from shoal.testweb import TestWeb

from .conftest import result_rows, run_shoal, shoal_argv


def _head_one_line(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run shoal with standard output into a reader that takes one line and goes away."""
    env = {**os.environ}
    env.pop("SHOAL_STORE", None)
    with subprocess.Popen(
        shoal_argv(*args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline().decode()
        proc.stdout.close()
        try:
            stderr = proc.stderr.read().decode()
            code = proc.wait(timeout=120)
        finally:
            proc.kill()
    return code, line, stderr


def test_output_into_a_closed_pipe_stops_quietly(site: TestWeb, tmp_path: Path) -> None:
    urls = [site.url(h, f"/page/{n}") for h in range(3) for n in range(40)]
    (tmp_path / "urls.txt").write_text("\n".join(urls) + "\n")
    code, line, stderr = _head_one_line("fetch", "urls.txt", "-o", "-", "--quiet", cwd=tmp_path)
    assert line.startswith('{"url":')
    assert code in (0, 141), stderr  # 0 if everything fitted in the pipe before it closed
    assert "internal error" not in stderr and "Traceback" not in stderr

    again = run_shoal("fetch", "urls.txt", "--quiet", cwd=tmp_path)  # the store is intact
    assert again.code == 0, again.stderr
    assert len(result_rows(tmp_path / "shoal.db", "urls")) == len(urls)

    for args in (
        ("export", "--job", "urls", "-o", "-"),
        ("stats", "--job", "urls", "--failed"),
        ("jobs", "--json"),
    ):
        code, _, stderr = _head_one_line(*args, cwd=tmp_path)
        assert code in (0, 141), stderr
        assert stderr == "" or "internal error" not in stderr


def test_config_is_accepted_after_the_subcommand(site: TestWeb, tmp_path: Path) -> None:
    (tmp_path / "u.txt").write_text(site.url(0, "/status/404") + "\n")
    (tmp_path / "job.toml").write_text('retries = 0\n[stats]\njob = "u"\n')
    assert run_shoal("fetch", "u.txt", "--config", "job.toml", "--quiet", cwd=tmp_path).code == 0
    after = run_shoal("stats", "--config", "job.toml", "--json", cwd=tmp_path)
    before = run_shoal("--config", "job.toml", "stats", "--json", cwd=tmp_path)
    assert after.code == 0 and before.code == 0, after.stderr + before.stderr
    assert json.loads(after.stdout)["job"] == "u"  # [stats] job = "u" applied
    assert after.stdout == before.stdout
    bad = run_shoal("stats", "--config", "missing.toml", cwd=tmp_path)
    assert bad.code == 2 and "cannot read missing.toml" in bad.stderr


def test_a_misspelled_command_gets_a_suggestion(tmp_path: Path) -> None:
    ran = run_shoal("fech", "urls.txt", cwd=tmp_path)
    assert ran.code == 2
    assert "No such command 'fech'. Did you mean 'fetch'?" in ran.stderr
    assert "Did you mean 'jobs'?" in run_shoal("job", cwd=tmp_path).stderr


def test_every_output_help_lists_every_format(tmp_path: Path) -> None:
    from shoal.export.writers import _SUFFIXES

    for command in ("fetch", "crawl", "export", "demo"):
        ran = run_shoal(command, "--help", cwd=tmp_path)
        text = " ".join(ran.stdout.split())
        for suffix in _SUFFIXES:
            assert re.search(rf"(?<![\w.]){re.escape(suffix)}(?!\w|\.\w)", text), (command, suffix)
