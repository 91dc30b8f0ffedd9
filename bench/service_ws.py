"""Benchmark: a crawl in ``shoal serve`` with and without many WebSocket clients.

    .venv/bin/python bench/service_ws.py [--clients 1000] [--pages 2000] [--hosts 4]

Serves a testweb site (``shoal testweb``, a process of its own, on 127.0.0.x so that
the clients here do not slow it), starts ``shoal serve
--allow-private`` on loopback, crawls the site once with no client, then again
(a new job) with ``--clients`` WebSocket clients on ``/events``, and prints:
pages/s of each crawl and their ratio (goal ≥ 0.9: a slow client never slows a
crawl), the service's peak RSS, the p95 time from a page's fetch to a client
receiving it, and how many page events were dropped for lagging clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

_LISTENING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


async def start_service(store: str, rate: float) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shoal",
        "serve",
        "--store",
        store,
        "--port",
        "0",
        "--allow-private",
        f"--ws-page-rate={rate}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    async with asyncio.timeout(60):
        while True:
            line = (await process.stderr.readline()).decode()
            if not line:
                raise SystemExit("shoal serve ended before listening")
            if (match := _LISTENING.search(line)) is not None:
                break

    async def drain() -> None:
        assert process.stderr is not None
        while await process.stderr.readline():
            pass

    asyncio.ensure_future(drain())
    return process, match.group(1)


async def crawl(http: httpx.AsyncClient, name: str, seeds: list[str]) -> float:
    """Run one crawl job to finished; its pages/s."""
    body = {"name": name, "kind": "crawl", "seeds": seeds, "scope": "any", "per_host": 8}
    created = await http.post("/jobs", json=body)
    created.raise_for_status()
    async with asyncio.timeout(600):
        while True:
            job = (await http.get(f"/jobs/{name}")).json()
            if job["state"] == "finished":
                break
            if job["state"] == "failed":
                raise SystemExit(f"job {name} failed: {job['error']}")
            await asyncio.sleep(0.2)
    return float(job["counts"]["finished"] / (job["finished_at"] - job["started_at"]))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def client(url: str, latencies: list[float], dropped: list[int], closed: list[int]) -> None:
    try:
        async with connect(url, max_queue=64) as ws:
            async for text in ws:
                message = json.loads(text)
                if message["type"] == "page":
                    latencies.append(time.time() - message["fetched_at"])
                elif message["type"] == "dropped":
                    dropped.append(message["count"])
    except Exception:  # noqa: BLE001 - a client closed for being slow is counted
        closed.append(1)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--pages", type=int, default=2000, help="pages per host")
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--page-rate", type=float, default=1000.0, help="--ws-page-rate")
    args = parser.parse_args()

    site = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shoal",
        "testweb",
        f"--hosts={args.hosts}",
        f"--pages={args.pages}",
        "--cross-host=0.1",
        "--no-log",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    assert site.stdout is not None
    async with asyncio.timeout(60):
        ready = json.loads(await site.stdout.readline())
    seeds = [base + "/" for base in ready["base_urls"]]
    with tempfile.TemporaryDirectory() as folder:
        process, base = await start_service(os.path.join(folder, "bench.db"), args.page_rate)
        try:
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                alone = await crawl(http, "alone", seeds)
                latencies: list[float] = []
                dropped: list[int] = []
                closed: list[int] = []
                ws_url = "ws" + base.removeprefix("http") + "/events"
                clients = [
                    asyncio.ensure_future(client(ws_url, latencies, dropped, closed))
                    for _ in range(args.clients)
                ]
                async with asyncio.timeout(120):
                    # Another process's gauge: nothing to wait on but asking again.
                    while (await http.get("/metrics")).text.find(  # noqa: ASYNC110
                        f"shoal_websocket_clients {float(args.clients)}"
                    ) < 0:
                        await asyncio.sleep(0.2)
                watched = await crawl(http, "watched", seeds)
                for task in clients:
                    task.cancel()
                await asyncio.gather(*clients, return_exceptions=True)
            rss = peak_rss_mib(process.pid)
        finally:
            process.terminate()
            await process.wait()
            site.terminate()
            await site.wait()
    p95 = statistics.quantiles(latencies, n=20)[18] if len(latencies) >= 20 else float("nan")
    print(f"clients                 {args.clients}")
    print(f"pages/s without clients {alone:,.0f}")
    print(f"pages/s with clients    {watched:,.0f}")
    print(f"ratio                   {watched / alone:.2f}  (goal >= 0.9)")
    print(f"service peak RSS        {rss:,.0f} MiB")
    print(f"page events received    {len(latencies):,}")
    print(f"p95 fetch -> client     {p95 * 1000:,.0f} ms")
    print(f"page events dropped     {sum(dropped):,}")
    print(f"clients closed as slow  {len(closed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
