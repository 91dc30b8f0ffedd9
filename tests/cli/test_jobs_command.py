"""``shoal jobs``, ``jobs rm``, ``stats --json/--failed`` and the export filters, end to end
on both stores: a real ``shoal`` process, a real site, a real store."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from shoal.store import open_store
from shoal.testweb import TestWeb

from .conftest import run_shoal

_PAGES = [f"/page/{n}" for n in range(4)]
_FAILING = ["/status/404", "/status/410", "/status/503"]


def _fetch(site: TestWeb, tmp_path: Path, store: str, job: str, *extra: str) -> list[str]:
    urls = [site.url(0, p) for p in _PAGES + _FAILING]
    urls.append("http://127.0.0.1:1/refused")  # nothing listens on port 1
    (tmp_path / f"{job}.txt").write_text("\n".join(urls) + "\n")
    ran = run_shoal(
        "fetch", f"{job}.txt", "--store", store, "--job", job, "--retries", "0", "--quiet",
        *extra, cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    return urls


def _json(*args: str, cwd: Path) -> object:
    ran = run_shoal(*args, cwd=cwd)
    assert ran.code == 0, ran.stderr
    return json.loads(ran.stdout)


def test_jobs_lists_states_counts_and_removes_a_job(
    site: TestWeb, tmp_path: Path, store_location: str
) -> None:
    store = store_location
    _fetch(site, tmp_path, store, "one", "--save-bodies")
    _fetch(site, tmp_path, store, "two")

    listed = _json("jobs", "--store", store, "--json", cwd=tmp_path)
    assert isinstance(listed, dict) and listed["size_bytes"] > 0
    rows = {row["name"]: row for row in listed["jobs"]}
    assert set(rows) == {"one", "two"}
    one = rows["one"]
    assert (one["kind"], one["state"], one["pending"]) == ("fetch", "finished", 0)
    assert (one["done"], one["failed"]) == (len(_PAGES) + len(_FAILING), 1)
    assert one["started_at"].endswith("Z") and one["finished_at"] is not None

    table = run_shoal("jobs", "--store", store, cwd=tmp_path)
    assert table.code == 0, table.stderr
    assert "one" in table.stdout and "finished" in table.stdout

    stats = _json("stats", "--store", store, "--job", "one", "--json", cwd=tmp_path)
    assert isinstance(stats, dict)
    assert stats["counts"]["total"] == 8 and stats["by_error_kind"] == {"connect_error": 1}
    every = _json("stats", "--store", store, "--json", cwd=tmp_path)
    assert isinstance(every, dict) and [j["job"] for j in every["jobs"]] == ["one", "two"]

    removed = run_shoal("jobs", "rm", "one", "--store", store, cwd=tmp_path)
    assert removed.code == 0, removed.stderr
    assert "removed job one" in removed.stderr
    left = _json("jobs", "--store", store, "--json", cwd=tmp_path)
    assert isinstance(left, dict) and [row["name"] for row in left["jobs"]] == ["two"]
    assert _json("stats", "--store", store, "--job", "two", "--json", cwd=tmp_path)

    again = run_shoal("jobs", "rm", "one", "--store", store, cwd=tmp_path)
    assert again.code == 2
    assert again.stderr.strip() == "shoal: no job named 'one' in the store (jobs: two)"


def test_a_running_job_is_not_removed_and_an_interrupted_one_says_so(
    site: TestWeb, tmp_path: Path, store_location: str
) -> None:
    _fetch(site, tmp_path, store_location, "busy")

    async def pretend(heartbeat_ago: float, pending: int) -> None:
        from shoal.core.model import NewRequest

        store = open_store(store_location)
        await store.open()
        try:
            job = await store.get_job("busy")
            assert job is not None
            now = time.time()
            await store.register_worker(
                job.id, "other-process", pid=4242, hostname="elsewhere", now=now - heartbeat_ago
            )
            urls = [site.url(1, f"/page/{n}") for n in range(pending)]
            await store.add_requests(job.id, [NewRequest.for_url(u) for u in urls], now=now)
        finally:
            await store.close()

    asyncio.run(pretend(heartbeat_ago=1.0, pending=0))
    rows = _json("jobs", "--store", store_location, "--json", cwd=tmp_path)
    assert isinstance(rows, dict) and rows["jobs"][0]["state"] == "running"
    refused = run_shoal("jobs", "rm", "busy", "--store", store_location, cwd=tmp_path)
    assert refused.code == 2
    assert refused.stderr.strip() == (
        "shoal: job 'busy' is running (pid 4242 on elsewhere); stop it before removing it"
    )
    assert _json("stats", "--store", store_location, "--job", "busy", "--json", cwd=tmp_path)

    asyncio.run(pretend(heartbeat_ago=3600.0, pending=2))  # its heartbeat stopped long ago
    rows = _json("jobs", "--store", store_location, "--json", cwd=tmp_path)
    assert isinstance(rows, dict)
    assert (rows["jobs"][0]["state"], rows["jobs"][0]["pending"]) == ("interrupted", 2)
    assert rows["jobs"][0]["finished_at"] is None
    removed = run_shoal("jobs", "rm", "busy", "--store", store_location, cwd=tmp_path)
    assert removed.code == 0, removed.stderr


def test_failed_urls_and_export_filters(site: TestWeb, tmp_path: Path, store_location: str) -> None:
    store = store_location
    urls = _fetch(site, tmp_path, store, "mixed")
    failing = sorted(u for u in urls if "/status/" in u or ":1/" in u)

    listed = _json("stats", "--store", store, "--job", "mixed", "--failed", "--json", cwd=tmp_path)
    assert isinstance(listed, list)
    assert sorted(r["url"] for r in listed) == failing
    by_url = {r["url"]: r for r in listed}
    assert by_url[site.url(0, "/status/410")]["status"] == 410
    refused = by_url["http://127.0.0.1:1/refused"]
    assert (refused["status"], refused["error_kind"]) == (None, "connect_error")
    assert refused["error"]

    table = run_shoal("stats", "--store", store, "--job", "mixed", "--failed", cwd=tmp_path)
    assert table.code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["STATUS", "ERROR_KIND", "URL", "ERROR"]
    assert sorted(line.split()[2] for line in lines[1:]) == failing
    assert "4 failed URL(s) in job mixed" in table.stderr

    def exported(*filters: str) -> list[str]:
        ran = run_shoal(
            "export", "--store", store, "--job", "mixed", "-o", "-", *filters, cwd=tmp_path
        )
        assert ran.code == 0, ran.stderr
        return sorted(json.loads(line)["url"] for line in ran.stdout.splitlines())

    pages = sorted(site.url(0, p) for p in _PAGES)
    assert exported() == sorted(urls)
    assert exported("--status", "2xx") == pages
    assert exported("--status", "4xx") == sorted(site.url(0, p) for p in _FAILING[:2])
    assert exported("--status", "410,503") == sorted(site.url(0, p) for p in _FAILING[1:])
    assert exported("--status", "2xx", "--status", "404") == sorted(
        [*pages, site.url(0, "/status/404")]
    )
    assert exported("--error-kind", "connect_error") == ["http://127.0.0.1:1/refused"]
    assert exported("--failed") == failing
    assert exported("--failed", "--status", "5xx") == [site.url(0, "/status/503")]

    csv = run_shoal(
        "export", "--store", store, "--job", "mixed", "-o", "f.csv", "--failed", cwd=tmp_path
    )
    assert csv.code == 0, csv.stderr
    assert len((tmp_path / "f.csv").read_text().splitlines()) == 1 + len(failing)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("export", "--job", "j", "-o", "-", "--status", "6xx"), "is not a class like 2xx"),
        (("export", "--job", "j", "-o", "-", "--error-kind", "nope"), "unknown error kind"),
        (("export", "--job", "j", "-o", "x.csv", "--with-text"), "--with-text is for JSONL"),
        (("stats", "--failed"), "--failed lists one job's failures: give --job NAME"),
        (("jobs", "rm", "nope"), "no job named 'nope'"),
    ],
)
def test_bad_filters_and_names_are_one_line_errors(
    site: TestWeb, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "j.txt").write_text(site.url(0, "/page/1") + "\n")
    assert run_shoal("fetch", "j.txt", "--quiet", cwd=tmp_path).code == 0
    ran = run_shoal(*args, cwd=tmp_path)
    assert ran.code == 2
    assert ran.stderr.startswith("shoal: ") and message in ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1 and "Traceback" not in ran.stderr
