"""Run the real ``shoal`` command in a child process against testweb in a thread."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shoal.testweb import SiteSpec, TestWeb

from ..conftest import fresh_schema


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


def shoal_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "shoal", *args]


def run_shoal(
    *args: str,
    cwd: Path,
    stdin: str | None = None,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> Ran:
    env = {**os.environ, "COLUMNS": "120", **(env or {})}
    env.pop("SHOAL_STORE", None)
    proc = subprocess.run(
        shoal_argv(*args),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def result_rows(db: Path, job: str) -> list[tuple[str, int | None, str | None]]:
    """(url, status, error_kind) per result row, straight from the SQLite file."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT r.url, r.status, r.error_kind FROM results r JOIN jobs j ON j.id = r.job_id "
            "WHERE j.name = ? ORDER BY r.url",
            (job,),
        ).fetchall()


@pytest.fixture(scope="module")
def site() -> Iterator[TestWeb]:
    with TestWeb.run_in_thread(SiteSpec(hosts=3, pages=40)) as web:
        yield web


@pytest.fixture(params=["sqlite", "postgres"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store for the command to use, once per backend: an SQLite path or a DSN."""
    if request.param == "sqlite":
        yield str(tmp_path / "jobs.db")
        return
    server: str = request.getfixturevalue("pg_server")
    context = fresh_schema(server)
    loop = asyncio.new_event_loop()
    try:
        dsn = loop.run_until_complete(context.__aenter__())
        yield dsn
        loop.run_until_complete(context.__aexit__(None, None, None))
    finally:
        loop.close()
