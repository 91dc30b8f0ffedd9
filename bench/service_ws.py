# ruff: noqa: E402
"""Benchmark: a crawl in ``shoal serve`` with and without many WebSocket clients.

    .venv/bin/python bench/service_ws.py [--clients 1000] [--pages 10000] [--hosts 4]
                                         [--page-rate 1000] [--profile FILE]

Serves a testweb site (``shoal testweb``, a process of its own) and starts ``shoal serve
--allow-private`` on loopback. It crawls the site three times, each a new job: alone,
then with ``--clients`` WebSocket clients on ``/events``, then alone again. The clients
live in a process of their own (this script, ``--as-clients``), so that neither this
script's loop nor the clients' JSON decoding runs in the service or in the loop that
times it. Prints the pages/s of each crawl and the ratio watched / mean of the two alone
(goal >= 0.9: clients never slow a crawl), the service's RSS with the clients connected
and its peak, the p95 time from a page's fetch to a client receiving it, the page events
received and dropped, and the load average. ``--profile FILE`` passes ``--profile`` to
``shoal serve`` (``.html``: pyinstrument; else cProfile).

Every loop is bounded: each crawl has a time limit, the clients connect in bounded
batches, and each wait has a deadline.
"""

from __future__ import annotations

import sys

# This folder is first on the path, and bench/queue.py would shadow the standard
# library's queue (which anyio imports).
sys.path[:] = [p for p in sys.path if p != sys.path[0] or not p.endswith("bench")]

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

_LISTENING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")
CRAWL_LIMIT_S = 600.0
CONNECT_BATCH = 50


def raise_open_files(wanted: int) -> int:
    """The soft RLIMIT_NOFILE raised towards ``wanted`` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


async def start_service(
    store: str, rate: float, profile: str | None
) -> tuple[asyncio.subprocess.Process, str]:
    extra = ["--profile", profile] if profile else []
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
        *extra,
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


@dataclass(frozen=True, slots=True)
class Crawled:
    pages_per_s: float
    cpu_us_per_page: float  # the service's CPU time (all its threads) over the crawl
    system_us_per_page: float  # of which in the kernel (sockets, loopback delivery)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """The process's (user, system) CPU seconds so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


async def crawl(http: httpx.AsyncClient, name: str, seeds: list[str], pid: int) -> Crawled:
    """Run one crawl job to finished: its pages/s (the service's own start and end) and
    the service's CPU time per page."""
    cpu = cpu_seconds(pid)
    body = {"name": name, "kind": "crawl", "seeds": seeds, "scope": "any", "per_host": 8}
    created = await http.post("/jobs", json=body)
    created.raise_for_status()
    async with asyncio.timeout(CRAWL_LIMIT_S):
        while True:
            job = (await http.get(f"/jobs/{name}")).json()
            if job["state"] == "finished":
                break
            if job["state"] == "failed":
                raise SystemExit(f"job {name} failed: {job['error']}")
            # Another process's job: asking again is the only way to know.
            await asyncio.sleep(0.5)
    pages = job["counts"]["finished"]
    user, system = cpu_seconds(pid)
    return Crawled(
        pages_per_s=pages / (job["finished_at"] - job["started_at"]),
        cpu_us_per_page=1e6 * (user + system - cpu[0] - cpu[1]) / pages,
        system_us_per_page=1e6 * (system - cpu[1]) / pages,
    )


def rss_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


# The clients' process ------------------------------------------------------------------


async def run_clients(url: str, count: int) -> int:
    """``count`` clients on ``url``: prints ``ready`` once all are connected, then, when
    standard input closes, one JSON line of what they received."""
    from websockets.asyncio.client import connect

    raise_open_files(count + 256)
    latencies: list[float] = []
    dropped = [0]
    closed = [0]
    connected = [0]
    all_in = asyncio.Event()

    async def one() -> None:
        try:
            async with connect(url, max_queue=64, open_timeout=60) as ws:
                connected[0] += 1
                if connected[0] == count:
                    all_in.set()
                async for text in ws:
                    message = json.loads(text)
                    kind = message["type"]
                    if kind == "page":
                        latencies.append(time.time() - message["fetched_at"])
                    elif kind == "dropped":
                        dropped[0] += message["count"]
        except Exception:  # noqa: BLE001 - a client refused or closed as slow is counted
            closed[0] += 1

    tasks: list[asyncio.Task[None]] = []
    for start in range(0, count, CONNECT_BATCH):
        for _ in range(min(CONNECT_BATCH, count - start)):
            tasks.append(asyncio.create_task(one()))
        await asyncio.sleep(0.05)  # a burst of handshakes at a time, not all at once
    async with asyncio.timeout(120):
        await all_in.wait()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the bench closes it
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    p95 = statistics.quantiles(latencies, n=20)[18] if len(latencies) >= 20 else None
    report = {"received": len(latencies), "p95": p95, "dropped": dropped[0], "closed": closed[0]}
    print(json.dumps(report), flush=True)
    return 0


async def start_clients(url: str, count: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--as-clients",
        url,
        f"--clients={count}",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    async with asyncio.timeout(180):
        line = (await process.stdout.readline()).decode().strip()
    if line != "ready":
        raise SystemExit(f"the clients did not connect: {line!r}")
    return process


async def stop_clients(process: asyncio.subprocess.Process) -> dict[str, Any]:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.close()
    async with asyncio.timeout(120):
        report: dict[str, Any] = json.loads(await process.stdout.readline())
        await process.wait()
    return report


# The bench ------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> int:
    raise_open_files(args.clients + 1024)
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
        process, base = await start_service(
            os.path.join(folder, "bench.db"), args.page_rate, args.profile
        )
        try:
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                alone = [await crawl(http, "alone-1", seeds, process.pid)]
                rss_idle = rss_mib(process.pid, "VmRSS")
                ws_url = "ws" + base.removeprefix("http") + "/events"
                clients = await start_clients(ws_url, args.clients)
                gauge = f"shoal_websocket_clients {float(args.clients)}"
                async with asyncio.timeout(60):
                    # A handshake completes just before the service counts the client.
                    while gauge not in (await http.get("/metrics")).text:  # noqa: ASYNC110
                        await asyncio.sleep(0.2)
                rss_clients = rss_mib(process.pid, "VmRSS")
                watched = await crawl(http, "watched", seeds, process.pid)
                report = await stop_clients(clients)
                alone.append(await crawl(http, "alone-2", seeds, process.pid))
            peak = rss_mib(process.pid, "VmHWM")
        finally:
            process.terminate()
            await process.wait()
            site.terminate()
            await site.wait()
    baseline = statistics.fmean(c.pages_per_s for c in alone)
    cpu_alone = statistics.fmean(c.cpu_us_per_page for c in alone)
    p95 = report["p95"]
    print(f"clients                    {args.clients} (--ws-page-rate {args.page_rate:g})")
    rates = ", ".join(f"{c.pages_per_s:,.0f}" for c in alone)
    print(f"pages/s alone (before, after) {rates}")
    print(f"pages/s with clients       {watched.pages_per_s:,.0f}")
    print(f"ratio                      {watched.pages_per_s / baseline:.2f}  (goal >= 0.9)")
    cpus = ", ".join(f"{c.cpu_us_per_page:,.0f} ({c.system_us_per_page:,.0f})" for c in alone)
    print(f"service CPU/page alone     {cpus} us (of which system)")
    print(
        f"service CPU/page watched   {watched.cpu_us_per_page:,.0f} "
        f"({watched.system_us_per_page:,.0f}) us"
    )
    print(f"CPU ratio alone / watched  {cpu_alone / watched.cpu_us_per_page:.2f}")
    print(f"service RSS idle           {rss_idle:,.0f} MiB")
    print(f"service RSS with clients   {rss_clients:,.0f} MiB")
    print(f"service peak RSS           {peak:,.0f} MiB")
    print(f"page events received       {report['received']:,}")
    p95_text = f"{p95 * 1000:,.0f} ms" if p95 is not None else "n/a"
    print(f"p95 fetch -> client        {p95_text}")
    print(f"page events dropped        {report['dropped']:,}")
    print(f"clients closed or refused  {report['closed']}")
    print(f"load average now           {os.getloadavg()[0]:.1f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--pages", type=int, default=10_000, help="pages per host")
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--page-rate", type=float, default=1000.0, help="--ws-page-rate")
    parser.add_argument("--profile", default=None, help="shoal serve --profile FILE")
    parser.add_argument("--as-clients", metavar="URL", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_clients is not None:
        return asyncio.run(run_clients(args.as_clients, args.clients))
    return asyncio.run(bench(args))


if __name__ == "__main__":
    raise SystemExit(main())
