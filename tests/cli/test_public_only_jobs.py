"""A job that connects only to public addresses does so whoever runs it.

``shoal serve`` makes its jobs public-only unless told otherwise. The rule is kept with
the job (``JobSpec.public_only``), so a ``shoal worker`` joining it refuses the same
addresses the service would, at connection time, and records them as
``blocked_address``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from shoal.core.jobspec import JobSpec
from shoal.engine.run.runner import JobRunner
from shoal.store import SQLiteStore
from shoal.testweb import TestWeb

from .conftest import run_shoal


async def _public_only_job(db: Path, seed: str) -> dict[str, object]:
    store = SQLiteStore(str(db))
    async with store:
        runner = JobRunner(store, JobSpec.crawl([seed]), name="svc", block_private=True)
        await runner.open()  # the job and its seed, as the service leaves them
        await runner.close()
        job = await store.get_job("svc")
        assert job is not None
        return dict(job.config)


def test_a_worker_joining_a_public_only_job_keeps_to_public_addresses(
    site: TestWeb, tmp_path: Path
) -> None:
    db = tmp_path / "jobs.db"
    before = sum(h.requests for h in site.stats().hosts)
    record = asyncio.run(_public_only_job(db, site.url(0, "/")))
    assert record.get("public_only") is True
    assert JobSpec.from_record("crawl", record).public_only

    ran = run_shoal("worker", "--store", str(db), "--job", "svc", "--quiet", cwd=tmp_path)
    assert ran.code == 0, ran.stderr

    exported = run_shoal(
        "export",
        "--store",
        str(db),
        "--job",
        "svc",
        "--format",
        "jsonl",
        "-o",
        "-",
        cwd=tmp_path,
    )
    assert exported.code == 0, exported.stderr
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [row["error_kind"] for row in rows] == ["blocked_address"]
    assert sum(h.requests for h in site.stats().hosts) == before  # nothing reached it


def test_a_job_without_the_rule_stores_nothing_of_it(tmp_path: Path) -> None:
    spec = JobSpec.crawl(["http://example.com/"])
    assert "public_only" not in spec.as_record()
    assert not JobSpec.from_record("crawl", spec.as_record()).public_only
    public = JobSpec.crawl(["http://example.com/"], public_only=True)
    # A rerun from the command line may run it without the rule: a change, not a conflict.
    comparison = spec.compare(public)
    assert not comparison.conflicts
    assert comparison.changes == ("public_only True → none",)
