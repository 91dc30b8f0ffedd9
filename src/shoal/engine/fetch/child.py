"""A fetch process of a ``FetchPool``: HTTP for the crawler that started it.

Speaks the messages of ``engine.fetch.wire``: reads ``ChildSettings``, then lists
of ``FetchOrder``; writes ``Ready`` once its session is up, then lists of
``Answer``. EOF on its input (the crawler closed it, or died) ends it:
fetches still running are dropped, as the crawler no longer waits for them.
Ctrl-C and SIGTERM are the crawler's to handle, so this process ignores them.

Forked by ``pool.prefork`` it runs ``serve_forever``; started by exec,
``python -m shoal.engine.fetch.child READ_FD WRITE_FD``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import Any

from shoal.core.extract import ExtractRules, extract_fields
from shoal.engine.fetch.fetcher import Attempt
from shoal.engine.fetch.spacing import SendSpacing
from shoal.engine.fetch.transport import fetch_in_turn, open_transport
from shoal.engine.fetch.wire import (
    WIRE_VERSION,
    Answer,
    ChildSettings,
    FetchOrder,
    FrameReader,
    Ready,
    frame,
)
from shoal.engine.pages.fields import add_fields, has_fields
from shoal.engine.pages.links import LinkSettings, page_links
from shoal.engine.resources import raise_nofile_limit, run_loop

PROCESS_NAME = "shoal-fetch"

log = logging.getLogger("shoal.engine.fetch_child")


class _Input(asyncio.Protocol):
    def __init__(self) -> None:
        self._reader = FrameReader()
        self.messages: asyncio.Queue[Any] = asyncio.Queue()

    def data_received(self, data: bytes) -> None:
        for message in self._reader.feed(data):
            self.messages.put_nowait(message)

    def eof_received(self) -> bool:
        self.messages.put_nowait(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.messages.put_nowait(None)


async def _serve(read_fd: int, write_fd: int) -> None:
    loop = asyncio.get_running_loop()
    _, source = await loop.connect_read_pipe(_Input, os.fdopen(read_fd, "rb", buffering=0))
    sink, _ = await loop.connect_write_pipe(
        asyncio.Protocol, os.fdopen(write_fd, "wb", buffering=0)
    )
    settings = await source.messages.get()
    if settings is None:
        return  # forked for a run that never needed it
    if not isinstance(settings, ChildSettings) or settings.version != WIRE_VERSION:
        log.warning("not a crawl of this version on the other end; exiting")
        return
    config, keep_body, links = settings.config, settings.keep_body, settings.links
    body_wanted = settings.save_bodies
    rules = ExtractRules.of(settings.extract_rules) if settings.extract_rules else None
    raise_nofile_limit(config.limits.concurrency + 256)
    answers: list[Answer] = []
    sending = False

    def send_answers() -> None:
        nonlocal answers, sending
        sending = False
        batch, answers = answers, []
        if batch and not sink.is_closing():
            sink.write(frame(batch))

    async with (
        open_transport(config, keep_body=keep_body) as transport,
        asyncio.TaskGroup() as tasks,
    ):
        running: set[asyncio.Task[None]] = set()

        spacing = SendSpacing()

        async def one(order: FetchOrder) -> None:
            nonlocal sending
            request = order.request
            attempt = await fetch_in_turn(transport, spacing, request, order.gap, after=order.after)
            if rules is not None:
                _extract_fields(attempt, rules)
            if links is not None and attempt.body:
                _read_links(attempt, links, body_wanted)
            elif rules is not None and not body_wanted and not config.follow_links:
                attempt.body = None  # its fields are out: nothing in the crawler reads it
            # Not answers.append(await ...): that would bind the list sent meanwhile.
            answers.append(Answer(order.seq, attempt))
            if not sending:
                sending = True
                loop.call_soon(send_answers)

        sink.write(frame(Ready()))
        orders: list[FetchOrder]
        while (orders := await source.messages.get()) is not None:
            for order in orders:
                task = tasks.create_task(one(order))
                running.add(task)
                task.add_done_callback(running.discard)
        # The crawl is gone or no longer waits for these: the task group ends with them.
        for task in list(running):
            task.cancel()


def _extract_fields(attempt: Attempt, rules: ExtractRules) -> None:
    """Apply the job's extraction rules to a 2xx page, as ``FieldExtractor`` would in the
    crawler (which then leaves the page alone)."""
    attempt.fields_done = True
    result, body = attempt.result, attempt.body
    if body is None or not has_fields(result):
        return
    try:
        extraction = extract_fields(body, rules, content_type=result.content_type)
    except Exception as exc:  # noqa: BLE001 - a page never stops the crawl
        log.warning("field extraction failed on %s: %s: %s", result.url, type(exc).__name__, exc)
        return
    add_fields(result, extraction)


def _read_links(attempt: Attempt, links: LinkSettings, body_wanted: bool) -> None:
    """Read the page's links here, for the crawler's link processor; the body then goes
    back only if the crawler still needs it (to save it)."""
    assert attempt.body is not None
    try:
        page = page_links(attempt.result, attempt.body, links)
    except Exception:  # noqa: BLE001 - the crawler reads them, and reports what fails
        return
    if page is not None:
        attempt.links = page
        if not body_wanted:
            attempt.body = None


def serve_forever(read_fd: int, write_fd: int) -> None:
    """Serve the crawler on these two pipe ends until its side closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # so that ps and top tell it from the crawler (Linux)
        with open("/proc/self/comm", "w") as comm:
            comm.write(PROCESS_NAME)
    # Nothing printed may reach the crawler's own output; warnings go to stderr.
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    logging.basicConfig(format="shoal: %(message)s", level=logging.WARNING, force=True)
    for noisy in ("asyncio", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    with contextlib.suppress(BrokenPipeError, ConnectionError):
        run_loop(_serve(read_fd, write_fd))


def main() -> None:
    from shoal.engine.profiling import child_profile_path, profiled

    read_fd, write_fd = int(sys.argv[1]), int(sys.argv[2])
    with profiled(child_profile_path(os.getpid())):
        serve_forever(read_fd, write_fd)
    sys.exit(0)


if __name__ == "__main__":
    main()
