"""Fetching every zoo endpoint: each URL gets exactly the outcome it deserves, in bounded
time, and the event loop is never blocked."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import replace

import pytest

from shoal.core.config import HTTP_CLIENTS, CrawlConfig, Limits, Politeness, RetryPolicy, Timeouts
from shoal.core.inputs import parse_line
from shoal.core.model import FetchResult, NewRequest
from shoal.engine.fetch.fetcher import SpecialUseResolver
from shoal.engine.fetch.transport import client_for
from shoal.engine.run.job import JobRun
from shoal.store import Store

from ..engine.test_crawler import results_by_url
from .conftest import ZooProcess, watching_the_loop

MiB = 1 << 20

# name -> (status, error_kind) with CONFIG below (max_bytes 10 MiB, 10 redirects, read
# timeout 2.5 s, total 5 s; the zoo drips one byte a second).
EXPECTED: dict[str, tuple[int | None, str | None]] = {
    "index": (200, None),
    "ok": (200, None),
    "stall": (None, "read_timeout"),
    "drip": (None, "timeout"),
    "endless": (200, "too_large"),
    "endless-declared": (200, "too_large"),
    "bomb/gzip": (200, "too_large"),
    "bomb/deflate": (200, "too_large"),
    "bomb/br": (200, "too_large"),
    "bomb/zstd": (200, "too_large"),
    "bad-encoding/gzip": (None, "protocol_error"),
    "bad-encoding/br": (None, "protocol_error"),
    "bad-encoding/zstd": (None, "protocol_error"),
    "long-line": (200, None),
    "charset/invalid-utf8": (200, None),
    "charset/latin1-as-utf8": (200, None),
    "charset/utf8-as-latin1": (200, None),
    "charset/unknown-charset": (200, None),
    "charset/meta-conflict": (200, None),
    "charset/utf16-unlabelled": (200, None),
    "charset/bom-lies": (200, None),
    "binary": (200, None),
    "formula": (200, None),
    "loop/a": (None, "too_many_redirects"),
    "chain/50": (None, "too_many_redirects"),
    "redirect-scheme/ftp": (None, "invalid_redirect"),
    "redirect-scheme/file": (None, "invalid_redirect"),
    "redirect-scheme/javascript": (None, "invalid_redirect"),
    "redirect-scheme/mailto": (None, "invalid_redirect"),
    "redirect-scheme/data": (None, "invalid_redirect"),
    "calendar": (200, None),
    "raw/reset-mid-body": (None, "connection_reset"),
    "raw/reset-at-once": (None, "connection_reset"),
    "raw/close-at-once": (None, "connection_reset"),
    "raw/no-response": (None, "read_timeout"),
    "raw/drip-headers": (None, "timeout"),
    "raw/bad-status-line": (None, "protocol_error"),
    "raw/not-http": (None, "protocol_error"),
    "raw/malformed-header": (None, "protocol_error"),
    "raw/space-before-colon": (None, "protocol_error"),
    "raw/duplicate-headers": (200, None),
    "raw/conflicting-length": (None, "protocol_error"),
    "raw/huge-header": (None, "protocol_error"),
    "raw/many-headers": (None, "protocol_error"),
    "raw/non-ascii-headers": (200, None),
    "raw/cl-short": (None, "protocol_error"),
    "raw/cl-long": (None, "connection_reset"),
    "raw/chunked-bad-size": (None, "protocol_error"),
    "raw/chunked-truncated": (None, "connection_reset"),
    "raw/chunked-and-length": (None, "protocol_error"),
    "raw/http10-close": (200, None),
    "raw/ok": (200, None),
    "tls": (None, "certificate_error"),
    "refused": (None, "connect_error"),
    "dns": (None, "dns_error"),
}

# Where a client records another outcome than EXPECTED, and why that outcome is fair too.
DIFFERENT: dict[str, dict[str, tuple[int | None, str | None]]] = {
    "aiohttp": {},
    "pyreqwest": {
        # hyper refuses control bytes in a header value (RFC 9110 §5.5 forbids them);
        # aiohttp's parser keeps the value as it came.
        "raw/non-ascii-headers": (None, "protocol_error"),
        # hyper reads the 16 bytes Content-Length declares, and does not reuse a
        # connection on which more bytes arrived: the page is those 16 bytes.
        "raw/cl-short": (200, None),
        # reqwest's read timeout bounds the wait for the whole response head, not each
        # read of it: a head dripped slower than that is a read timeout.
        "raw/drip-headers": (None, "read_timeout"),
    },
    # pyreqwest at this concurrency; the head hyper refuses is read again by aiohttp.
    "auto": {
        "raw/cl-short": (200, None),
        "raw/drip-headers": (None, "read_timeout"),
    },
}
RETRIES = 1
CONFIG = CrawlConfig(
    limits=Limits(concurrency=64, max_bytes=10 * MiB, max_redirects=10),
    timeouts=Timeouts(total=5, connect=2, read=2.5),
    politeness=Politeness(per_host=64),
    retry=RetryPolicy(retries=RETRIES, backoff_base=0.05, backoff_cap=0.2, retry_after_cap=1),
)


def deadline(config: CrawlConfig) -> float:
    """How long a run may take: every attempt of the slowest URL hitting the total timeout,
    each followed by the longest wait allowed, plus room for a loaded machine."""
    retry, attempts = config.retry, config.retry.retries + 1
    waits = max(retry.backoff_cap, retry.retry_after_cap)
    return attempts * config.timeouts.total + retry.retries * waits + 20.0


async def fetch_all(store: Store, urls: list[str], config: CrawlConfig) -> dict[str, FetchResult]:
    job = await store.ensure_job("zoo", mode="fetch", config={})
    requests = [parse_line(url, n) for n, url in enumerate(urls, 1)]
    await store.add_requests(
        job.id, [r for r in requests if isinstance(r, NewRequest)], now=time.time()
    )
    async with asyncio.timeout(deadline(config)):
        outcome = await JobRun(store, job, config).run()
    assert outcome.completed
    return await results_by_url(store, job)


@pytest.fixture(params=HTTP_CLIENTS)
def http(request: pytest.FixtureRequest) -> str:
    """Each test runs on every HTTP client a run can choose."""
    return str(request.param)


def test_every_endpoint_has_an_expectation(zoo: ZooProcess) -> None:
    names = {n for n in zoo.urls if not n.startswith(("429/", "5xx/"))}
    assert names == set(EXPECTED)


async def test_each_endpoint_is_recorded_as_what_it_is(
    zoo: ZooProcess, sqlite_store: Store, http: str
) -> None:
    urls = dict(zoo.urls)
    async with watching_the_loop(0.1) as slow:
        found = await fetch_all(sqlite_store, list(urls.values()), replace(CONFIG, http=http))
    assert not slow, "the event loop was blocked:\n" + "\n".join(slow)

    expected = EXPECTED | DIFFERENT[http]
    wrong = {
        name: (found[url].status, found[url].error_kind, found[url].error)
        for name, url in urls.items()
        if name in expected and (found[url].status, found[url].error_kind) != expected[name]
    }
    assert not wrong, "\n".join(f"{name}: {got}" for name, got in sorted(wrong.items()))

    for name, url in urls.items():
        result = found[url]
        if name.startswith("429/"):  # a storm of 429s: retried after Retry-After, then kept
            assert (result.status, result.error_kind) == (429, None)
            assert result.attempts == RETRIES + 1
        elif name.startswith("5xx/"):  # always a (random) 5xx
            assert result.status in (500, 502, 503, 504) and result.error_kind is None
            assert result.attempts == RETRIES + 1
        elif name == "endless-declared":  # announced 2**40 bytes: none was read
            assert (result.bytes, result.body_hash) == (0, None)
            assert str(1 << 40) in (result.error or "")
        elif expected[name][1] in ("too_large",):
            # What arrived before giving up: past the cap, by less than one read.
            assert CONFIG.limits.max_bytes < result.bytes < 2 * CONFIG.limits.max_bytes
            assert result.body_hash is None
        elif expected[name][1] is None:
            assert result.body_hash is not None
    assert found[urls["long-line"]].bytes == 10_000_000
    if "raw/non-ascii-headers" not in DIFFERENT[http]:
        # Header text is the server's bytes read as Latin-1: every byte comes back.
        raw = found[urls["raw/non-ascii-headers"]].headers
        headers = {n: v.encode("latin-1") for n, v in raw}
        assert headers["X-Latin1"] == b"caf\xe9"
        assert headers["X-Utf8"] == "caf\u00e9 \u2603".encode()
        assert headers["X-High"] == b"\xff\xfe\x80"
    assert [v for k, v in found[urls["raw/duplicate-headers"]].headers if k == "X-Dup"] == [
        "1",
        "2",
        "3",
    ]


@pytest.mark.parametrize("insecure", [False, True])
async def test_self_signed_certificate_needs_insecure(
    zoo: ZooProcess, sqlite_store: Store, insecure: bool, http: str
) -> None:
    url = zoo.urls["tls"]
    config = CrawlConfig(
        timeouts=Timeouts(total=10, connect=5, read=5),
        retry=RetryPolicy(retries=2, backoff_base=0.01, backoff_cap=0.02),
        verify_tls=not insecure,
        http=http,
    )
    result = (await fetch_all(sqlite_store, [url], config))[url]
    if insecure:
        assert (result.status, result.error_kind) == (200, None)
    else:
        assert (result.status, result.error_kind) == (None, "certificate_error")
        # OpenSSL (aiohttp) names the cause; rustls (pyreqwest) says no trusted root signed it.
        cause = "UnknownIssuer" if client_for(config) == "pyreqwest" else "self-signed"
        assert cause in (result.error or "")
        assert result.attempts == 1, "a certificate that fails verification is not retried"


async def test_random_5xx_settle_the_same_way_every_run(
    zoo: ZooProcess, sqlite_store: Store, http: str
) -> None:
    """``/zoo/5xx/{key}?p=0.5`` answers a 5xx at random, but the same for the n-th request
    of a URL in every run: with 3 retries some recover, some do not, none is lost."""
    await asyncio.to_thread(zoo.reset_stats)  # the n-th request of a URL counts from here
    urls = [zoo.url(1, f"/zoo/5xx/r{n}?p=0.5") for n in range(24)]
    config = CrawlConfig(
        limits=Limits(concurrency=24),
        politeness=Politeness(per_host=24),
        retry=RetryPolicy(retries=3, backoff_base=0.01, backoff_cap=0.05),
        http=http,
    )
    found = await fetch_all(sqlite_store, urls, config)
    statuses = {found[url].status for url in urls}
    assert 200 in statuses and statuses & {500, 502, 503, 504}
    for url in urls:
        result = found[url]
        assert result.error_kind is None
        if result.status != 200:
            assert result.attempts == 4


@pytest.mark.parametrize("name", ["unresolvable.invalid", "A.B.INVALID.", "invalid"])
async def test_invalid_names_fail_without_asking_a_name_server(name: str) -> None:
    """RFC 6761 §6.4: names under .invalid never resolve; shoal answers that itself (the
    autouse guard fails the test if getaddrinfo is asked)."""
    resolver = SpecialUseResolver()
    with pytest.raises(socket.gaierror, match="RFC 6761"):
        await resolver.resolve(name, 80)
    assert (await resolver.resolve("127.0.0.1", 80))[0]["host"] == "127.0.0.1"
    await resolver.close()


def _spin(seconds: float) -> None:
    """Hold the CPU for ``seconds`` of this thread's own CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def test_the_loop_watch_sees_a_callback_that_blocks() -> None:
    # What the zoo tests rely on: a callback that computes, or waits in a blocking call,
    # for longer than the threshold is caught, however loaded the machine.
    loop = asyncio.get_running_loop()
    async with watching_the_loop(0.1) as slow:
        for block in (lambda: _spin(0.15), lambda: time.sleep(0.15)):  # noqa: ASYNC251
            done = loop.create_future()
            loop.call_soon(lambda b=block, d=done: (b(), d.set_result(None)))
            await done
        await asyncio.sleep(0)
    assert len(slow) == 2, slow
