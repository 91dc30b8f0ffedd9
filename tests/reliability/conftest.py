"""Helpers for running the real ``shoal`` command on bad input and under process faults."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LOOPBACK_NAMES = Path(__file__).with_name("_loopback_names.py")


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def messages(self) -> list[str]:
        """The lines on standard error."""
        return self.stderr.splitlines()


def shoal_argv(*args: str, loopback_names: bool = False) -> list[str]:
    if loopback_names:
        return [sys.executable, str(LOOPBACK_NAMES), *args]
    return [sys.executable, "-m", "shoal", *args]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    # A narrow terminal: nothing may be wrapped onto a second line.
    env.update(COLUMNS="60", **extra)
    return env


def run_shoal(
    *args: str,
    cwd: Path,
    stdin: bytes | None = None,
    loopback_names: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Ran:
    proc = subprocess.run(
        shoal_argv(*args, loopback_names=loopback_names),
        cwd=cwd,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout,
        env=child_env(**(env or {})),
    )
    return Ran(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def result_rows(db: Path, job: str) -> list[tuple[str, int | None, str | None]]:
    """(url, status, error_kind) per result row, in URL order, straight from the file."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(
            "SELECT r.url, r.status, r.error_kind FROM results r JOIN jobs j ON j.id = r.job_id "
            "WHERE j.name = ? ORDER BY r.url",
            (job,),
        ).fetchall()
