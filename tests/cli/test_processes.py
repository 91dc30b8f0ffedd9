"""``--processes``: the fetch processes live and die with the command, through Ctrl-C
to the whole process group and kill -9 of the parent, and lose nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from shoal.testweb import TestWeb

from ..conftest import alive, fetch_children
from .conftest import result_rows, run_shoal, shoal_argv
from .test_fetch_command import _wait_rows, write_urls


def _wait(condition: object, seconds: float, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.02)


def test_ctrl_c_to_the_process_group_is_graceful(site: TestWeb, tmp_path: Path) -> None:
    urls = [site.url(h, f"/delay/{200 + n}") for h in range(3) for n in range(60)]
    write_urls(tmp_path / "slow.txt", urls)
    argv = shoal_argv("fetch", "slow.txt", "--per-host", "2", "--concurrency", "6")
    proc = subprocess.Popen(
        [*argv, "--processes", "2"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, as a shell gives a command: Ctrl-C hits all
    )
    db = tmp_path / "shoal.db"
    _wait_rows(db, "slow", at_least=10, proc=proc)
    children = fetch_children(proc.pid)
    assert len(children) == 2
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "resume" in err
    _wait(lambda: not any(alive(c) for c in children), 30, "fetch processes exited")
    partial = result_rows(db, "slow")
    assert 10 <= len(partial) < len(urls)

    ran = run_shoal("fetch", "slow.txt", "--per-host", "6", "--processes", "2", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert sorted(u for u, _, _ in result_rows(db, "slow")) == sorted(urls)


def test_kill_9_of_the_parent_ends_its_children_and_a_rerun_completes(
    site: TestWeb, tmp_path: Path
) -> None:
    urls = [site.url(h, f"/delay/{20 + n % 30}?n={n}") for h in range(3) for n in range(120)]
    write_urls(tmp_path / "work.txt", urls)
    common = ("--concurrency", "12", "--per-host", "4", "--quiet", "--processes", "2")
    proc = subprocess.Popen(
        shoal_argv("fetch", "work.txt", *common),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = tmp_path / "shoal.db"
    assert _wait_rows(db, "work", at_least=40, proc=proc)
    children = fetch_children(proc.pid)
    assert len(children) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # Their input closed with the parent: they exit by themselves (init reaps them).
    _wait(lambda: not any(alive(c) for c in children), 30, "orphaned fetch processes exited")

    ran = run_shoal("fetch", "work.txt", *common, cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    got = result_rows(db, "work")
    assert sorted(u for u, _, _ in got) == sorted(urls)
    assert all(status == 200 for _, status, _ in got)


def test_a_worker_runs_the_fetch_processes_it_is_given(site: TestWeb, tmp_path: Path) -> None:
    urls = [site.url(h, f"/delay/{100 + n}?w={n}") for h in range(3) for n in range(40)]
    write_urls(tmp_path / "work.txt", urls)
    common = ("--per-host", "2", "--concurrency", "6", "--quiet")
    # Start the job, stop it early: the worker joins an unfinished job.
    starter = subprocess.Popen(
        shoal_argv("fetch", "work.txt", *common, "--processes", "0"),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = tmp_path / "shoal.db"
    assert _wait_rows(db, "work", at_least=3, proc=starter)
    starter.send_signal(signal.SIGINT)
    starter.communicate(timeout=60)
    assert starter.returncode == 130

    worker = subprocess.Popen(
        shoal_argv("worker", "--store", str(db), "--job", "work", "--processes", "2", "-q"),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait(lambda: len(fetch_children(worker.pid)) == 2, 30, "the worker's two fetch processes")
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    assert sorted(u for u, _, _ in result_rows(db, "work")) == sorted(urls)
