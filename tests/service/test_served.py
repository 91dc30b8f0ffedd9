"""End to end: a real ``shoal serve`` process, driven over HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

import websockets

from shoal.store import SQLiteStore
from shoal.testweb import SiteSpec, TestWeb

from .kit import TOKEN
from .served import client, connect, follow_until, shoal_serve

OPTIONS = {"concurrency": 8, "per_host": 2, "retries": 0, "depth": 3}


async def stored_results(path: Path, job: str) -> list[tuple[str, int | None, int]]:
    async with SQLiteStore(path) as store:
        info = await store.get_job(job)
        assert info is not None
        found = [
            (r.url, r.status, r.depth) async for batch in store.iter_results(info.id) for r in batch
        ]
    return sorted(found)


async def test_a_crawl_followed_live_matches_the_cli_crawl_of_the_same_spec(
    tmp_path: Path,
) -> None:
    async with TestWeb(SiteSpec(hosts=2, pages=40, cross_host_links=0.2)) as web:
        seed = web.url(0, "/")
        async with shoal_serve(str(tmp_path / "served.db"), "--allow-private") as served:
            async with connect(served.ws_url + "/events") as ws, client(served) as http:
                body = {"name": "site", "kind": "crawl", "seeds": [seed], **OPTIONS}
                created = await http.post("/jobs", json=body)
                assert created.status_code == 201, created.text
                pages, _ = await follow_until(ws, "site", "finished")
                job = (await http.get("/jobs/site")).json()
                assert "shoal_websocket_clients 1.0" in (await http.get("/metrics")).text
        served_results = await stored_results(tmp_path / "served.db", "site")
        assert len(pages) == len(served_results) == job["counts"]["total"]
        assert sorted(p["url"] for p in pages) == [r[0] for r in served_results]

        cli = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "shoal",
            "crawl",
            seed,
            "--store",
            str(tmp_path / "cli.db"),
            "--job",
            "site",
            "--quiet",
            *(f"--{k.replace('_', '-')}={v}" for k, v in OPTIONS.items()),
        )
        async with asyncio.timeout(120):
            assert await cli.wait() == 0
        assert await stored_results(tmp_path / "cli.db", "site") == served_results


async def test_a_restarted_service_resumes_its_running_job(tmp_path: Path) -> None:
    store = str(tmp_path / "served.db")
    async with TestWeb(SiteSpec(hosts=1, pages=120, latency_ms=15)) as web:
        body = {"name": "slow", "kind": "crawl", "seeds": [web.url(0, "/")], "per_host": 1}
        async with shoal_serve(store, "--allow-private") as served:
            async with client(served) as http:
                assert (await http.post("/jobs", json=body)).status_code == 201
            async with connect(served.ws_url + "/jobs/slow/events") as ws:
                async with asyncio.timeout(60):
                    seen = 0
                    async for text in ws:
                        seen += '"type":"page"' in str(text)
                        if seen >= 5:
                            break
            # SIGTERM: the job stops gracefully (uvicorn then re-raises the signal).
            assert await served.terminate() in (0, -signal.SIGTERM)
        assert any("Application shutdown complete" in line for line in served.log)
        async with SQLiteStore(tmp_path / "served.db") as opened:
            job = await opened.get_job("slow")
            assert job is not None and job.desired == "running"
            counts = await opened.counts(job.id)
            assert counts.finished >= 5 and counts.open > 0 and counts.leased == 0

        async with shoal_serve(store, "--allow-private") as served:
            async with connect(served.ws_url + "/jobs/slow/events") as ws:
                await follow_until(ws, "slow", "finished")
        results = await stored_results(tmp_path / "served.db", "slow")
        urls = [r[0] for r in results]
        assert len(urls) == len(set(urls))
        assert set(urls) == web.expected_pages(host=0, cross_host=False)


async def test_with_a_token_every_route_but_healthz_needs_it(tmp_path: Path) -> None:
    store = str(tmp_path / "served.db")
    async with shoal_serve(store, env={"SHOAL_TOKEN": TOKEN}) as served:
        async with client(served) as anonymous, client(served, TOKEN) as trusted:
            assert (await anonymous.get("/healthz")).status_code == 200
            for path in ("/jobs", "/metrics", "/openapi.json", "/jobs/x/results"):
                refused = await anonymous.get(path)
                assert refused.status_code == 401
                assert refused.json() == {"detail": "unauthorized"}
            wrong = await anonymous.get("/jobs", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            assert (await trusted.get("/jobs")).json() == {"jobs": []}
            try:
                async with connect(served.ws_url + "/events"):
                    raise AssertionError("a WebSocket without the token was accepted")
            except websockets.InvalidStatus as exc:
                assert exc.response.status_code == 403
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with connect(served.ws_url + "/events", additional_headers=headers) as ws:
                await ws.ping()
    assert not any(TOKEN in line for line in served.log)


async def test_listening_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    refused = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shoal",
        "serve",
        "--store",
        str(tmp_path / "s.db"),
        "--host",
        "0.0.0.0",
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
    )
    async with asyncio.timeout(60):
        _, err = await refused.communicate()
    assert refused.returncode == 2
    lines = err.decode().strip().splitlines()
    assert lines == [
        "shoal: refusing to serve on 0.0.0.0 without a token: give --token (or SHOAL_TOKEN), "
        "or bind to 127.0.0.1"
    ]


async def test_a_websocket_message_over_the_limit_closes_the_socket(tmp_path: Path) -> None:
    async with shoal_serve(str(tmp_path / "served.db")) as served:
        async with connect(served.ws_url + "/events", max_size=None) as ws:
            await ws.send("x" * (65 * 1024))
            try:
                async with asyncio.timeout(30):
                    await ws.recv()
            except websockets.ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1009
            else:
                raise AssertionError("the socket stayed open")


async def test_a_store_that_cannot_open_is_a_one_line_error(tmp_path: Path) -> None:
    refused = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shoal",
        "serve",
        "--store",
        str(tmp_path / "missing" / "s.db"),
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _, err = await refused.communicate()
    assert refused.returncode == 3
    assert err.decode().strip().splitlines() == [
        f"shoal: store error: cannot open store {tmp_path / 'missing' / 's.db'}: "
        f"directory {tmp_path / 'missing'} does not exist"
    ]


async def test_a_postgresql_service_shows_the_workers_that_join_its_job(
    pg_dsn: str, tmp_path: Path
) -> None:
    from shoal.store import open_store

    spec = SiteSpec(hosts=2, pages=150, latency_ms=20, cross_host_links=0.0)
    async with TestWeb(spec) as web:
        seeds = [web.url(0, "/"), web.url(1, "/")]
        async with shoal_serve(pg_dsn, "--allow-private") as served, client(served) as http:
            body = {"name": "fleet", "kind": "crawl", "seeds": seeds, "per_host": 1}
            assert (await http.post("/jobs", json=body)).status_code == 201
            worker = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "shoal",
                "worker",
                "--store",
                pg_dsn,
                "--job",
                "fleet",
                "--processes",
                "0",
                "-q",
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                async with asyncio.timeout(60):
                    while True:
                        job = (await http.get("/jobs/fleet")).json()
                        if worker.pid in {w["pid"] for w in job["workers"]}:
                            break
                        assert job["state"] == "running", job
                        # Another process's row: asking again is the only way to see it.
                        await asyncio.sleep(0.1)
                assert len(job["workers"]) == 2  # the service's own run, and the worker
                assert all(w["heartbeat_at"] >= w["started_at"] for w in job["workers"])
                async with connect(served.ws_url + "/jobs/fleet/events") as ws:
                    await follow_until(ws, "fleet", "finished")
                async with asyncio.timeout(120):
                    _, err = await worker.communicate()
                assert worker.returncode == 0, err.decode()
            finally:
                if worker.returncode is None:
                    worker.kill()
                    await worker.wait()
    store = open_store(pg_dsn)
    async with store:
        info = await store.get_job("fleet")
        assert info is not None
        urls = [r.url async for batch in store.iter_results(info.id) for r in batch]
    assert len(urls) == len(set(urls))
    expected = web.expected_pages(host=0, cross_host=False) | web.expected_pages(
        host=1, cross_host=False
    )
    assert set(urls) == expected


async def test_a_port_in_use_or_an_unknown_host_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, expected in (
            (
                ("--port", str(port)),
                f"shoal: cannot listen on 127.0.0.1 port {port}: Address already in use",
            ),
            (
                ("--host", "no-such-host.invalid", "--token", TOKEN),
                "shoal: cannot listen on no-such-host.invalid: ",
            ),
        ):
            refused = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "shoal",
                "serve",
                "--store",
                str(tmp_path / "s.db"),
                *args,
                stderr=asyncio.subprocess.PIPE,
            )
            async with asyncio.timeout(60):
                _, err = await refused.communicate()
            assert refused.returncode == 2
            lines = err.decode().strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(expected), lines
