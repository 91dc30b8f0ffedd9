"""``make demo`` runs ``shoal demo``: it must work offline, end to end."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import run_shoal


def test_demo_fetches_the_bundled_site(tmp_path: Path) -> None:
    ran = run_shoal("demo", "--hosts", "2", "--pages", "40", cwd=tmp_path, timeout=180)
    assert ran.code == 0, ran.stderr
    assert "job demo" in ran.stderr and "requests" in ran.stderr
    rows = [json.loads(line) for line in (tmp_path / "shoal-demo.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 40 + 7
    statuses = {r["status"] for r in rows}
    assert {200, 404, 410} <= statuses
    assert (tmp_path / "shoal-demo.db").exists()
