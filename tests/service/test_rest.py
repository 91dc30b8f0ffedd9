"""The REST API through httpx against the ASGI app, on a real testweb site and store."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq

from shoal.core.model import JobCounts
from shoal.store import SQLiteStore
from shoal.testweb import SiteSpec, TestWeb

from .kit import FAST, served, wait_for_state


async def test_a_crawl_runs_to_finished_and_shows_its_results(tmp_path: Path) -> None:
    async with TestWeb(SiteSpec(hosts=2, pages=20)) as web, served(tmp_path) as (app, client):
        body = {"name": "site", "kind": "crawl", "seeds": [web.url(0, "/")], **FAST}
        created = await client.post("/jobs", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["name"] == "site"
        assert created.json()["state"] in ("queued", "running", "finished")
        job = await wait_for_state(app, client, "site", "finished")
        expected = web.expected_pages(host=0, cross_host=False)
        assert job["counts"]["done"] == job["counts"]["total"] == len(expected)
        assert job["by_status_class"] == {"2xx": len(expected)}
        assert job["spec"]["seeds"] == [web.url(0, "/")]
        listed = (await client.get("/jobs")).json()["jobs"]
        assert [j["name"] for j in listed] == ["site"]

        seen: list[str] = []
        after = -1
        for _ in range(100):
            page = await client.get("/jobs/site/results", params={"after": after, "limit": 7})
            data = page.json()
            seen += [r["url"] for r in data["results"]]
            if data["next_after"] is None:
                break
            after = data["next_after"]
        assert sorted(seen) == sorted(expected)
        assert len(seen) == len(set(seen))

        lines = (await client.get("/jobs/site/export", params={"format": "jsonl"})).text
        assert sorted(json.loads(line)["url"] for line in lines.splitlines()) == sorted(expected)
        table = (await client.get("/jobs/site/export", params={"format": "csv"})).text
        assert len(list(csv.DictReader(io.StringIO(table)))) == len(expected)
        parquet = (await client.get("/jobs/site/export", params={"format": "parquet"})).content
        assert pq.read_table(io.BytesIO(parquet)).num_rows == len(expected)


async def test_results_filter_by_status_and_error_kind(tmp_path: Path) -> None:
    async with TestWeb(SiteSpec(hosts=1, pages=5)) as web, served(tmp_path) as (app, client):
        urls = [web.url(0, "/page/1"), web.url(0, "/status/404"), "http://unresolvable.invalid/"]
        created = await client.post("/jobs", json={"name": "f", "kind": "fetch", "urls": urls})
        assert created.status_code == 201, created.text
        await wait_for_state(app, client, "f", "finished")
        missing = (await client.get("/jobs/f/results", params={"status": "4xx"})).json()
        assert [r["url"] for r in missing["results"]] == [web.url(0, "/status/404")]
        dns = await client.get("/jobs/f/results", params={"error_kind": "dns_error"})
        assert [r["url"] for r in dns.json()["results"]] == ["http://unresolvable.invalid/"]
        bad = await client.get("/jobs/f/results", params={"status": "7xx"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["query", "status"]


async def test_the_same_name_with_other_settings_is_409_naming_them(tmp_path: Path) -> None:
    async with TestWeb(SiteSpec(hosts=2, pages=10)) as web, served(tmp_path) as (app, client):
        body = {"name": "c", "kind": "crawl", "seeds": [web.url(0, "/")], "depth": 1, **FAST}
        assert (await client.post("/jobs", json=body)).status_code == 201
        await wait_for_state(app, client, "c", "finished")
        other = {**body, "seeds": [web.url(1, "/")], "scope": "domain"}
        conflict = await client.post("/jobs", json=other)
        assert conflict.status_code == 409
        assert set(conflict.json()["conflicts"]) == {"seeds", "scope"}
        same = await client.post("/jobs", json=body)
        assert same.status_code == 200
        assert same.json()["name"] == "c"


async def test_invalid_input_is_422_per_field(tmp_path: Path) -> None:
    async with served(tmp_path) as (_app, client):
        bad = await client.post(
            "/jobs",
            json={"name": "bad name!", "kind": "crawl", "seeds": ["http://a.test/"], "depth": -1},
        )
        assert bad.status_code == 422
        fields = {tuple(e["loc"]) for e in bad.json()["detail"]}
        assert fields == {("body", "name"), ("body", "depth")}
        seed = await client.post(
            "/jobs", json={"name": "s", "kind": "crawl", "seeds": ["http://a.test/", "ftp://x"]}
        )
        assert seed.status_code == 422
        assert seed.json()["detail"][0]["loc"] == ["body", "seeds", 1]
        url = await client.post("/jobs", json={"name": "u", "kind": "fetch", "urls": ["nope"]})
        assert url.status_code == 422
        assert url.json()["detail"][0]["loc"] == ["body", "urls", 0]
        assert (await client.get("/jobs")).json() == {"jobs": []}
        assert (await client.get("/jobs/nothing")).status_code == 404


async def test_urls_are_added_as_json_lines_with_errors_per_line(tmp_path: Path) -> None:
    async with TestWeb(SiteSpec(hosts=1, pages=10)) as web, served(tmp_path) as (app, client):
        first = {"name": "f", "kind": "fetch", "urls": [web.url(0, "/page/1")]}
        assert (await client.post("/jobs", json=first)).status_code == 201
        await wait_for_state(app, client, "f", "finished")
        lines = "\n".join(
            [
                web.url(0, "/page/2"),
                "not a url",
                json.dumps({"url": web.url(0, "/page/3")}),
                "# a comment",
                web.url(0, "/page/1"),
            ]
        )
        added = await client.post("/jobs/f/urls", content=lines.encode())
        assert added.status_code == 200, added.text
        report = added.json()
        assert (report["lines"], report["valid"], report["added"], report["invalid"]) == (
            5,
            3,
            2,
            1,
        )
        assert report["errors"][0]["line"] == 2
        job = await wait_for_state(app, client, "f", "finished")
        assert job["counts"]["done"] == 3


async def test_request_bodies_are_bounded(tmp_path: Path) -> None:
    async with served(tmp_path, max_body_bytes=1000, max_urls_per_request=2) as (_app, client):
        big = await client.post("/jobs", content=b"x" * 2000)
        assert big.status_code == 413
        many = {"name": "m", "kind": "fetch", "urls": [f"http://a.test/{n}" for n in range(3)]}
        assert (await client.post("/jobs", json=many)).status_code == 422

        async def chunked() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"http://a.test/" + b"a" * 300  # one long line, no Content-Length

        await client.post("/jobs", json={"name": "m", "kind": "fetch", "urls": []})
        streamed = await client.post("/jobs/m/urls", content=chunked())
        assert streamed.status_code == 413
        assert "request body over 1,000 bytes" in streamed.json()["detail"]
        three = b"http://a.test/1\nhttp://a.test/2\nhttp://a.test/3\n"
        too_many = await client.post("/jobs/m/urls", content=three)
        assert too_many.status_code == 413
        assert too_many.json()["detail"] == "at most 2 URLs per request"


async def test_pause_resume_cancel_delete(tmp_path: Path) -> None:
    spec = SiteSpec(hosts=1, pages=200, latency_ms=20)
    async with TestWeb(spec) as web, served(tmp_path) as (app, client):
        body = {"name": "slow", "kind": "crawl", "seeds": [web.url(0, "/")], "per_host": 1}
        assert (await client.post("/jobs", json=body)).status_code == 201
        paused = await client.post("/jobs/slow/pause")
        assert paused.status_code == 200
        assert paused.json()["state"] == "paused"
        assert paused.json()["desired"] == "paused"
        done_when_paused = paused.json()["counts"]["finished"]
        assert (await client.get("/jobs/slow")).json()["counts"]["finished"] == done_when_paused
        resumed = await client.post("/jobs/slow/resume")
        assert resumed.json()["state"] in ("queued", "running")
        cancelled = await client.post("/jobs/slow/cancel")
        assert cancelled.json()["state"] == "cancelled"
        assert (await client.post("/jobs/slow/resume")).status_code == 409
        kept = cancelled.json()["counts"]["finished"]
        results = (await client.get("/jobs/slow/results", params={"limit": 1000})).json()
        assert len(results["results"]) == kept
        assert (await client.delete("/jobs/slow")).status_code == 204
        assert (await client.get("/jobs/slow")).status_code == 404
        assert (await client.get("/jobs")).json() == {"jobs": []}


async def test_health_and_metrics(tmp_path: Path) -> None:
    async with TestWeb(SiteSpec(hosts=1, pages=5)) as web, served(tmp_path) as (app, client):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        body = {"name": "m", "kind": "fetch", "urls": [web.url(0, "/page/1")]}
        await client.post("/jobs", json=body)
        await wait_for_state(app, client, "m", "finished")
        text = (await client.get("/metrics")).text
        assert 'shoal_pages_total{job="m",status_class="2xx"} 1.0' in text
        assert "shoal_fetch_seconds_bucket" in text
        assert 'shoal_store_write_seconds_count{operation="complete"}' in text
        assert 'shoal_store_write_seconds_count{operation="complete"} 0.0' not in text
        assert "shoal_websocket_clients 0.0" in text
        schema = (await client.get("/openapi.json")).json()
        assert "/jobs/{name}/results" in schema["paths"]


async def test_by_default_jobs_may_not_reach_loopback_or_private_addresses(
    tmp_path: Path,
) -> None:
    async with (
        TestWeb(SiteSpec(hosts=1, pages=5)) as web,
        served(tmp_path, allow_private=False) as (app, client),
    ):
        port = web.url(0, "/").rsplit(":", 1)[1].rstrip("/")
        urls = [
            web.url(0, "/page/1"),  # a literal loopback address
            f"http://localhost:{port}/page/2",  # a name that resolves to one
            f"http://[::ffff:127.0.0.1]:{port}/page/3",  # IPv4-mapped IPv6
        ]
        created = await client.post("/jobs", json={"name": "ssrf", "kind": "fetch", "urls": urls})
        assert created.status_code == 201, created.text
        job = await wait_for_state(app, client, "ssrf", "finished")
        assert job["counts"]["failed"] == 3
        results = (await client.get("/jobs/ssrf/results")).json()["results"]
        assert [r["error_kind"] for r in results] == ["blocked_address"] * 3
        assert sum(h.requests for h in web.stats().hosts) == 0
        crawl = {"name": "c", "kind": "crawl", "seeds": [web.url(0, "/")]}
        assert (await client.post("/jobs", json=crawl)).status_code == 201
        job = await wait_for_state(app, client, "c", "finished")
        assert job["by_error_kind"] == {"blocked_address": 1}
        assert sum(h.requests for h in web.stats().hosts) == 0


async def test_a_job_that_fails_is_its_state_and_the_service_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "service.db"
    async with SQLiteStore(path) as store:
        # A job the store says was running, with settings this version cannot use.
        job = await store.ensure_job(
            "broken", mode="crawl", config={"seeds": ["not a canonical url"]}
        )
        await store.set_desired(job.id, "running")
    async with (
        TestWeb(SiteSpec(hosts=1, pages=3)) as web,
        served(tmp_path, store=str(path)) as (
            app,
            client,
        ),
    ):
        broken = (await client.get("/jobs/broken")).json()
        assert broken["state"] == "failed"
        assert "missing scheme" in broken["error"]
        assert (await client.get("/healthz")).status_code == 200
        body = {"name": "fine", "kind": "fetch", "urls": [web.url(0, "/page/1")]}
        assert (await client.post("/jobs", json=body)).status_code == 201
        fine = await wait_for_state(app, client, "fine", "finished")
        assert fine["counts"]["done"] == 1


async def test_the_store_holds_at_most_max_jobs(tmp_path: Path) -> None:
    async with served(tmp_path, max_jobs=2) as (_app, client):
        for name in ("a", "b"):
            body = {"name": name, "kind": "fetch", "urls": []}
            assert (await client.post("/jobs", json=body)).status_code == 201
        third = await client.post("/jobs", json={"name": "c", "kind": "fetch", "urls": []})
        assert third.status_code == 409
        assert third.json()["detail"] == "the service holds 2 jobs already"
        again = await client.post("/jobs", json={"name": "a", "kind": "fetch", "urls": []})
        assert again.status_code == 200  # a job it holds is no new job
        assert (await client.delete("/jobs/a")).status_code == 204
        third = await client.post("/jobs", json={"name": "c", "kind": "fetch", "urls": []})
        assert third.status_code == 201


async def test_cors_is_off_unless_an_origin_is_configured(tmp_path: Path) -> None:
    preflight = {
        "Origin": "http://ui.test",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with served(tmp_path) as (_app, client):
        plain = await client.get("/jobs", headers={"Origin": "http://ui.test"})
        assert plain.status_code == 200
        assert "access-control-allow-origin" not in plain.headers
        refused = await client.options("/jobs", headers=preflight)
        assert refused.status_code == 405
        assert "access-control-allow-origin" not in refused.headers
    async with served(tmp_path, cors_origins=("http://ui.test",)) as (_app, client):
        allowed = await client.options("/jobs", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "http://ui.test"
        other = await client.options("/jobs", headers={**preflight, "Origin": "http://evil.test"})
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers


async def test_a_saved_body_is_a_safe_download_and_in_the_warc_export(tmp_path: Path) -> None:
    from warcio.archiveiterator import ArchiveIterator

    async with TestWeb(SiteSpec(hosts=1, pages=5)) as web, served(tmp_path) as (app, client):
        url = web.url(0, "/page/1")
        async with httpx.AsyncClient() as direct:
            page = (await direct.get(url)).content
        # Bodies are stored by content: the job without them fetches another page.
        for name, save, where in (("kept", True, url), ("plain", False, web.url(0, "/page/2"))):
            body = {"name": name, "kind": "fetch", "urls": [where], "save_bodies": save}
            assert (await client.post("/jobs", json=body)).status_code == 201
            await wait_for_state(app, client, name, "finished")
        [kept] = (await client.get("/jobs/kept/results")).json()["results"]
        download = await client.get(f"/jobs/kept/results/{kept['id']}/body")
        assert download.status_code == 200
        assert download.content == page
        assert download.headers["content-type"] == "application/octet-stream"
        assert download.headers["content-disposition"] == f'attachment; filename="{kept["id"]}"'
        assert download.headers["x-content-type-options"] == "nosniff"
        assert download.headers["content-security-policy"] == "sandbox"
        assert download.headers["x-shoal-content-type"].startswith("text/html")
        [plain] = (await client.get("/jobs/plain/results")).json()["results"]
        assert (await client.get(f"/jobs/plain/results/{plain['id']}/body")).status_code == 404
        assert (await client.get("/jobs/kept/results/999999/body")).status_code == 404
        warc = await client.get("/jobs/kept/export", params={"format": "warc"})
        assert warc.status_code == 200
        records = [
            (record.rec_headers.get_header("WARC-Target-URI"), record.content_stream().read())
            for record in ArchiveIterator(io.BytesIO(warc.content))
            if record.rec_type == "response"
        ]
        assert records == [(url, page)]


async def test_metrics_show_what_runs_and_errors_by_kind(tmp_path: Path) -> None:
    spec = SiteSpec(hosts=1, pages=200, latency_ms=20)
    async with TestWeb(spec) as web, served(tmp_path) as (app, client):
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            closed = f"http://127.0.0.1:{unused.getsockname()[1]}/"
        refused = {"name": "refused", "kind": "fetch", "urls": [closed], "retries": 0}
        assert (await client.post("/jobs", json=refused)).status_code == 201
        await wait_for_state(app, client, "refused", "finished")
        body = {"name": "slow", "kind": "crawl", "seeds": [web.url(0, "/")], "per_host": 1}
        assert (await client.post("/jobs", json=body)).status_code == 201
        await wait_for_state(app, client, "slow", "running")
        text = (await client.get("/metrics")).text
        assert 'shoal_requests_in_flight{job="slow"}' in text
        assert 'shoal_frontier_queued{job="slow"}' in text
        assert 'shoal_jobs{state="running"} 1.0' in text
        assert 'shoal_pages_total{job="refused",status_class="error"} 1.0' in text
        assert 'shoal_errors_total{job="refused",kind="connect_error"} 1.0' in text
        assert (await client.post("/jobs/slow/cancel")).status_code == 200
        text = (await client.get("/metrics")).text
        assert 'shoal_requests_in_flight{job="slow"}' not in text


async def test_clients_joining_at_once_share_one_look_at_every_jobs_state(
    tmp_path: Path,
) -> None:
    async with TestWeb(SiteSpec(hosts=1, pages=5)) as web, served(tmp_path) as (app, client):
        for name in ("a", "b"):
            body = {"name": name, "kind": "fetch", "urls": [web.url(0, "/page/1")], **FAST}
            assert (await client.post("/jobs", json=body)).status_code == 201
            await wait_for_state(app, client, name, "finished")
        jobs = app.state.shoal.jobs
        store = jobs.store
        counted: list[int] = []
        real_counts = store.counts

        async def counts(job_id: int) -> JobCounts:
            counted.append(job_id)
            return await real_counts(job_id)

        store.counts = counts
        try:
            seen = await asyncio.gather(*(jobs.states_now() for _ in range(200)))
            assert all(states == [("a", "finished"), ("b", "finished")] for states in seen)
            assert len(counted) <= 2  # one look per job for all 200, not one per client
            await client.delete("/jobs/b")
            assert await jobs.states_now() == [("a", "finished")]  # a change is seen at once
        finally:
            store.counts = real_counts
