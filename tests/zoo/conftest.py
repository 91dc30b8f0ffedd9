"""The zoo runs as its own process (``shoal testweb --zoo``): the tests' event loop, and
the interpreter lock, belong to shoal alone, so a blocked loop is shoal's doing."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any

import pytest

from shoal.testweb import TestWebStats

READY_TIMEOUT = 60.0


class ZooProcess:
    """A running ``shoal testweb --zoo``: its catalogue of URLs, and its request counts."""

    def __init__(self, ready: dict[str, Any]) -> None:
        self.urls: dict[str, str] = ready["zoo"]
        self.base_urls: list[str] = ready["base_urls"]
        self.index_url = self.urls["index"]

    def url(self, host: int, path: str) -> str:
        return self.base_urls[host] + path

    def stats(self) -> TestWebStats:
        with urllib.request.urlopen(self.url(0, "/_testweb/stats"), timeout=10) as response:
            data = json.load(response)
        return TestWebStats.from_json(data)

    def reset_stats(self) -> None:
        request = urllib.request.Request(self.url(0, "/_testweb/reset"), method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


@pytest.fixture(scope="module")
def zoo() -> Iterator[ZooProcess]:
    # stderr goes to a file: a pipe nobody reads could fill up and stall the server.
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shoal.testweb", "--zoo", "--first-address", "200", "--no-log"],
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        assert proc.stdout is not None
        try:
            yield ZooProcess(json.loads(_ready_line(proc, stderr)))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()


def _ready_line(proc: subprocess.Popen[bytes], stderr: IO[bytes]) -> bytes:
    """The server's ready line, or a failure that shows its stderr."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        ready = selector.select(READY_TIMEOUT)
    line = proc.stdout.readline() if ready else b""
    if not line:
        proc.kill()
        proc.wait()
        stderr.seek(0)
        pytest.fail(f"the zoo did not start within {READY_TIMEOUT} s: {stderr.read()!r}")
    return line


@pytest.fixture(autouse=True)
def no_lookup_of_invalid_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that would ask the system resolver (and so a name server) about a
    name under .invalid: shoal must answer those itself, without traffic."""
    real = socket.getaddrinfo

    def guarded(host: object, *args: object, **kwargs: object) -> object:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.rstrip(".").lower().endswith(".invalid"):
            raise AssertionError(f"getaddrinfo({name!r}) would query a name server")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


class _RunQueueWait:
    """How long the calling thread has waited for a CPU while ready to run, in seconds
    (the run delay of ``/proc/thread-self/schedstat``); always 0 where there is none."""

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = None

    def __call__(self) -> float:
        if self._fd is None:
            return 0.0
        return int(os.pread(self._fd, 128, 0).split()[1]) / 1e9

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


@contextlib.asynccontextmanager
async def watching_the_loop(threshold: float = 0.1) -> AsyncIterator[list[str]]:
    """Every callback that holds the running loop longer than ``threshold`` seconds (blocks
    it) is listed in the yielded list.

    A callback's time counts while it runs on a CPU or waits (a blocking call, the
    interpreter lock), not while this thread, ready to run, waits for a CPU: on a machine
    loaded by other work that time is the machine's, and it can reach tenths of a second
    for a callback of a millisecond. The loop runs in debug mode meanwhile, as before.

    The objects alive before (pytest's, the imported modules') are frozen out of the
    garbage collector meanwhile: a full collection of the test process's heap takes tens
    of milliseconds on a busy machine, and it would be charged to whichever callback
    happened to allocate at that moment. What shoal allocates is still collected.
    """
    loop = asyncio.get_running_loop()
    slow: list[str] = []
    queued = _RunQueueWait()
    clock = time.perf_counter
    run = asyncio.events.Handle._run

    def timed(handle: asyncio.Handle) -> None:
        started, waited = clock(), queued()
        try:
            run(handle)
        finally:
            took = clock() - started
            if took >= threshold:
                held = took - (queued() - waited)
                if held >= threshold:
                    slow.append(f"Executing {handle!r} held the loop {held:.3f} s ({took:.3f} s)")

    debug = loop.get_debug()
    gc.collect()
    gc.freeze()
    await asyncio.sleep(0)  # the collection above is not part of any measured callback
    loop.set_debug(True)
    asyncio.events.Handle._run = timed  # type: ignore[method-assign, assignment]
    try:
        yield slow
    finally:
        asyncio.events.Handle._run = run  # type: ignore[method-assign]
        loop.set_debug(debug)
        gc.unfreeze()
        queued.close()
