"""Benchmark: a queue-fed ``shoal worker --queue`` vs ``shoal fetch``, same URLs, same run.

    .venv/bin/python bench/queue.py [--pages 20000] [--concurrency 128] [--rounds 1]

Serves small static pages from nginx (if installed; else shoal's testweb),
starts a throwaway RabbitMQ (or uses SHOAL_BENCH_AMQP_URL), then per round:

* ``shoal fetch`` of the URL list into SQLite;
* ``shoal enqueue`` of the same list, then one ``shoal worker --queue`` until
  every result message has come back on the results queue (the worker is
  then stopped with SIGINT; its shutdown is not timed).

Prints pages/s of both (the queue's wall time is enqueue + consume), the ratio
queue/fetch (goal: ≥ 0.8) and the worker's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

# This file is named like the standard library's queue module, which the standard library
# imports (concurrent.futures): its directory goes last on the path, not first.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]

from _common import run_measured, static_server  # noqa: E402


@contextlib.contextmanager
def broker() -> Iterator[str]:
    url = os.environ.get("SHOAL_BENCH_AMQP_URL")
    if url:
        yield url
        return
    from shoal.testweb.rabbit import ThrowawayRabbit

    with ThrowawayRabbit() as node:
        yield node.url


class ResultCounter:
    """Counts result messages off a results queue, in a thread of its own."""

    def __init__(self, url: str, queue: str, target: int) -> None:
        self.count = 0
        self.done_at: float | None = None
        self._url, self._queue, self._target = url, queue, target
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(30)

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    async def _run(self) -> None:
        import aio_pika

        from shoal.queue import Topology
        from shoal.queue._amqp import declare_results

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        connection = await aio_pika.connect_robust(self._url)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=2000)
            topology = Topology(results=self._queue)
            await declare_results(channel, topology)
            queue = await channel.declare_queue(self._queue, durable=True)

            def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                self.count += 1
                if self.count >= self._target and self.done_at is None:
                    self.done_at = time.perf_counter()

            # Counting only: no acks (no_ack), so the harness costs the machine little
            # beside the worker it measures.
            await queue.consume(on_message, no_ack=True)
            self._ready.set()
            await self._stop.wait()
        finally:
            await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-nginx", action="store_true")
    args = parser.parse_args()
    shoal = str(Path(sys.executable).with_name("shoal"))
    common = [
        "--quiet", "--concurrency", str(args.concurrency),
        "--per-host", str(args.concurrency),
    ]  # fmt: skip
    with (
        static_server(prefer_nginx=not args.no_nginx) as (base, server),
        broker() as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        urls = Path(tmp) / "urls.txt"
        urls.write_text("".join(f"{base}/static/{i}\n" for i in range(args.pages)))
        print(f"server: {server} at {base}; {args.pages:,} pages; concurrency {args.concurrency}")
        ratios = []
        for round_no in range(args.rounds):
            fetch = run_measured(
                "shoal fetch",
                [shoal, "fetch", str(urls), "--store", str(Path(tmp) / f"f{round_no}.db"),
                 "--retries", "0", *common],
                args.pages,
            )  # fmt: skip
            tag = uuid.uuid4().hex[:8]
            requests, results = f"bench-{tag}.requests", f"bench-{tag}.results"
            counter = ResultCounter(url, results, args.pages)
            counter.start()
            try:
                enqueue = run_measured(
                    "shoal enqueue",
                    [shoal, "enqueue", url, str(urls), "--requests", requests, "--quiet"],
                    args.pages,
                )
                started = time.perf_counter()
                worker = run_measured(
                    "shoal worker --queue",
                    [shoal, "worker", "--queue", url, "--store", str(Path(tmp) / f"q{round_no}.db"),
                     "--requests", requests, "--results", results, *common],
                    args.pages,
                    interrupt=lambda _s, counter=counter: counter.done_at is not None,
                )  # fmt: skip
            finally:
                counter.close()
            if counter.done_at is None or fetch.exit_code or enqueue.exit_code or worker.exit_code:
                print(
                    f"round {round_no}: FAILED (fetch exit {fetch.exit_code}, enqueue exit "
                    f"{enqueue.exit_code}, worker exit {worker.exit_code}, "
                    f"{counter.count:,} results)"
                )
                return 1
            consume_s = counter.done_at - started
            queue_s = enqueue.wall_s + consume_s
            fetch_rate = args.pages / fetch.wall_s
            queue_rate = args.pages / queue_s
            ratios.append(queue_rate / fetch_rate)
            print(
                f"round {round_no}: shoal fetch {fetch_rate:,.0f} pages/s "
                f"(RSS {fetch.peak_rss_mb:.0f} MB, CPU {fetch.cpu_s:.1f}s); "
                f"queue {queue_rate:,.0f} pages/s "
                f"(enqueue {enqueue.wall_s:.1f}s + consume {consume_s:.1f}s; worker RSS "
                f"{worker.peak_rss_mb:.0f} MB, CPU {worker.cpu_s:.1f}s); "
                f"ratio {queue_rate / fetch_rate:.2f}"
            )
        print(f"queue/fetch ratio: {min(ratios):.2f}-{max(ratios):.2f} (goal ≥ 0.8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
