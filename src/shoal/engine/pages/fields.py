"""A page's fields: the job's extraction rules applied to each successful page.

Field extraction parses the whole page with the user's rules, so it runs in a
worker thread, off the event loop (``FieldExtractor``), or in a fetch process
beside the HTTP (``has_fields`` and ``add_fields``).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import TypeAlias

from shoal.core.extract import Extraction, ExtractRules, extract_fields
from shoal.core.model import FetchResult

__all__ = ["FieldExtractor", "add_fields", "has_fields"]

log = logging.getLogger("shoal.engine.pages.fields")


def has_fields(result: FetchResult) -> bool:
    """Whether extraction rules apply to this outcome: a complete 2xx page."""
    status = result.status
    return status is not None and 200 <= status < 300 and result.error_kind is None


def add_fields(result: FetchResult, extraction: Extraction) -> None:
    """Record a page's extracted fields (beside any already there) and its encoding."""
    result.fields = {**(result.fields or {}), **extraction.fields}
    result.encoding = extraction.encoding


_Job: TypeAlias = tuple[FetchResult, bytes, "asyncio.Future[Extraction]"]
_Done: TypeAlias = tuple["asyncio.Future[Extraction]", Extraction | BaseException]


class FieldExtractor:
    """Applies a job's extraction rules to each successful page, in worker threads.

    ``await extractor(result, body)`` sets ``result.fields`` and ``result.encoding``
    for a 2xx response; other results are left alone. A rule or page that fails in
    an unforeseen way leaves the fields null, logged; the page is still recorded.

    Threads, not processes: lexbor parses without the GIL and a body is not copied
    to another process. Not an executor either: each thread takes every page
    waiting in the queue and hands the batch back to the loop in one call, so a
    busy crawl pays one wake-up per batch, not two per page (see
    docs/benchmarks.md). One thread by default: the rest of each extraction holds
    the GIL, and more threads mostly contend for it with the event loop.
    """

    def __init__(self, rules: ExtractRules, *, workers: int = 1, batch: int = 64) -> None:
        if workers < 1 or batch < 1:
            raise ValueError("workers and batch must be at least 1")
        self.rules = rules
        self._workers = workers
        self._batch = batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def close(self) -> None:
        """Stop the threads once the queue is empty; nobody waits for them."""
        for _ in self._threads:
            self._queue.put(None)
        self._threads.clear()

    async def __call__(self, result: FetchResult, body: bytes) -> None:
        if not has_fields(result):
            return
        loop = asyncio.get_running_loop()
        if not self._threads:
            self._start(loop)
        future: asyncio.Future[Extraction] = loop.create_future()
        self._queue.put((result, body, future))
        try:
            extraction = await future
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a page never stops the crawl
            log.exception("field extraction failed on %s", result.url)
            return
        add_fields(result, extraction)

    def _extract(self, result: FetchResult, body: bytes) -> Extraction:
        return extract_fields(body, self.rules, content_type=result.content_type)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        for n in range(self._workers):
            # Daemon threads: a pathological regular expression must not keep the
            # process from exiting after the crawl has stopped waiting for it.
            thread = threading.Thread(
                target=self._work, args=(loop,), name=f"shoal-extract-{n}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _work(self, loop: asyncio.AbstractEventLoop) -> None:
        get, get_nowait, size = self._queue.get, self._queue.get_nowait, self._batch
        while True:
            job = get()
            done: list[_Done] = []
            while job is not None:
                result, body, future = job
                try:
                    done.append((future, self._extract(result, body)))
                except Exception as exc:  # noqa: BLE001 - handed to the page's worker
                    done.append((future, exc))
                if len(done) >= size:
                    break
                try:
                    job = get_nowait()
                except queue.Empty:
                    break
            if done:
                try:
                    loop.call_soon_threadsafe(_settle, done)
                except RuntimeError:  # the loop is closed: nobody is waiting any more
                    return
            if job is None:
                return


def _settle(done: list[_Done]) -> None:
    """On the loop: give each waiting worker its page's extraction."""
    for future, outcome in done:
        if future.done():  # its worker was cancelled meanwhile
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
