"""The Python API: streaming fetch and crawl, early stop, resume, the sync wrapper,
extraction, the Crawler with its hooks, and errors that are never exception groups."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from pathlib import Path

import pytest

import shoal
from shoal import (
    ConfigError,
    CrawlConfig,
    FetchResult,
    InputError,
    Limits,
    ShoalError,
    StoreError,
    Timeouts,
)
from shoal._apirun import unwrapped
from shoal.engine.pages.fields import FieldExtractor
from shoal.store import SQLiteStore
from shoal.testweb import SiteSpec, TestWeb

from . import shop

REPO = Path(__file__).resolve().parent.parent
FAST = CrawlConfig(limits=Limits(concurrency=16), timeouts=Timeouts(total=10, connect=3, read=5))


async def collect(results: AsyncGenerator[FetchResult, None]) -> list[FetchResult]:
    async with contextlib.aclosing(results) as stream:
        return [r async for r in stream]


async def test_fetch_streams_results_before_the_last_request_is_made() -> None:
    async with TestWeb(SiteSpec(hosts=2, pages=20)) as web:
        # One request in flight per host: 6 URLs of 300 ms take about 0.9 s per host.
        urls = [web.url(h, f"/delay/300?n={i}") for h in range(2) for i in range(3)]
        arrivals: list[float] = []
        results: list[FetchResult] = []
        async with contextlib.aclosing(shoal.fetch(urls, per_host=1, config=FAST)) as stream:
            async for result in stream:
                arrivals.append(time.time())
                results.append(result)
        assert sorted(r.url for r in results) == sorted(urls)
        assert all(r.status == 200 for r in results)
        # The first result reached us before the last one was even fetched.
        assert arrivals[0] < max(r.fetched_at for r in results)


async def test_breaking_early_stops_the_crawler_and_releases_the_rest(tmp_path: Path) -> None:
    db = str(tmp_path / "api.db")
    async with TestWeb(SiteSpec(hosts=1, pages=20)) as web:
        urls = [web.url(0, f"/delay/200?n={i}") for i in range(50)]
        started = time.monotonic()
        async with contextlib.aclosing(
            shoal.fetch(urls, store=db, job="early", per_host=2, config=FAST)
        ) as stream:
            async for _ in stream:
                break
        assert time.monotonic() - started < 5, "the crawler did not stop promptly"
    store = SQLiteStore(db)
    await store.open()
    try:
        info = await store.get_job("early")
        assert info is not None
        counts = await store.counts(info.id)
        assert counts.total == 50
        assert 1 <= counts.finished < 50
        assert counts.open == 50 - counts.finished  # released, to be resumed
    finally:
        await store.close()


async def test_a_persistent_store_resumes_without_fetching_again(tmp_path: Path) -> None:
    db = str(tmp_path / "resume.db")
    async with TestWeb(SiteSpec(hosts=2, pages=20)) as web:
        urls = [web.url(h, f"/page/{p}") for h in range(2) for p in range(5)]
        first = await collect(shoal.fetch(urls, store=db, job="j", config=FAST))
        assert sorted(r.url for r in first) == sorted(urls)
        web.reset_stats()
        # Same store, same job: everything is recorded already, so nothing is yielded.
        assert await collect(shoal.fetch(urls, store=db, job="j", config=FAST)) == []
        assert sum(h.requests for h in web.stats().hosts) == 0
        # New URLs join the job; only they are fetched and yielded.
        more = [web.url(0, "/page/6"), web.url(1, "/page/7")]
        again = await collect(shoal.fetch(urls + more, store=db, job="j", config=FAST))
        assert sorted(r.url for r in again) == sorted(more)


async def test_crawl_finds_exactly_the_reachable_pages() -> None:
    async with TestWeb(SiteSpec(hosts=2, pages=20)) as web:
        results = await collect(shoal.crawl([web.url(0, "/")], config=FAST))
        found = [r.url for r in results]
        assert len(found) == len(set(found))
        assert set(found) == web.expected_pages(host=0, cross_host=False)


async def test_crawl_respects_depth_and_max_pages() -> None:
    async with TestWeb(SiteSpec(hosts=2, pages=20)) as web:
        shallow = await collect(shoal.crawl([web.url(0, "/")], depth=1, config=FAST))
        assert {r.url for r in shallow} == web.expected_pages(host=0, depth=1, cross_host=False)
        capped = await collect(shoal.crawl([web.url(0, "/")], max_pages=3, config=FAST))
        assert len(capped) == 3


async def test_an_invalid_url_raises_before_anything_is_fetched() -> None:
    async with TestWeb(SiteSpec(hosts=1, pages=5)) as web:
        urls = [web.url(0, "/page/1"), "not a url", web.url(0, "/page/2")]
        with pytest.raises(InputError) as caught:
            await collect(shoal.fetch(urls, config=FAST))
        assert caught.value.line_no == 2
        with pytest.raises(InputError):
            await collect(shoal.crawl(["ftp://nowhere"], config=FAST))
        assert sum(h.requests for h in web.stats().hosts) == 0


def test_fetch_all_from_synchronous_code() -> None:
    with TestWeb.run_in_thread(SiteSpec(hosts=2, pages=20)) as web:
        urls = [web.url(h, f"/page/{p}") for h in range(2) for p in range(4)]
        results = shoal.fetch_all(urls, config=FAST)
    assert sorted(r.url for r in results) == sorted(urls)
    assert all(r.status == 200 for r in results)


async def test_fetch_all_inside_a_running_loop() -> None:
    asyncio.get_running_loop()  # as in a notebook: a loop is running on this thread
    # The site must not share this loop: fetch_all blocks it until the fetch is done.
    with TestWeb.run_in_thread(SiteSpec(hosts=1, pages=10)) as web:
        urls = [web.url(0, f"/page/{p}") for p in range(4)]
        results = shoal.fetch_all(urls, config=FAST)
    assert sorted(r.url for r in results) == sorted(urls)


@pytest.mark.parametrize("script", ["fetch_urls.py", "crawl_site.py", "crawl_with_hooks.py"])
def test_examples_run(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / script)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr


async def test_a_slow_consumer_holds_back_admission(tmp_path: Path) -> None:
    db = str(tmp_path / "slow.db")
    async with TestWeb(SiteSpec(hosts=1, pages=60)) as web:
        urls = [web.url(0, f"/page/{p}") for p in range(40)]
        stream = shoal.fetch(urls, store=db, job="slow", config=FAST, max_buffered=5)
        async with contextlib.aclosing(stream):
            seen = [await anext(stream)]
            await asyncio.sleep(1.0)  # a slow consumer: results pile up, admission waits
            store = SQLiteStore(db)
            await store.open()
            try:
                info = await store.get_job("slow")
                assert info is not None
                assert (await store.counts(info.id)).total == 5  # one chunk of max_buffered URLs
            finally:
                await store.close()
            seen += [r async for r in stream]
        assert sorted(r.url for r in seen) == sorted(urls)


# --- extraction, the Crawler and its hooks, errors ---------------------------------------


def shop_site(hosts: int = 1) -> TestWeb:
    return TestWeb(SiteSpec(hosts=hosts, pages=5), extra_routes=shop.routes)


def host_of(web: TestWeb, index: int) -> str:
    return web.url(index, "/").split("//")[1].split(":")[0]


async def test_fetch_and_crawl_extract_fields() -> None:
    async with shop_site() as web:
        urls = [web.url(0, f"/shop/{p}") for p in shop.PAGES]
        fetched = await collect(shoal.fetch(urls, config=FAST, extract=shop.RULES))
        crawled = await collect(
            shoal.crawl([web.url(0, "/shop/")], config=FAST, extract=list(_cli_rules()))
        )
    for results in (fetched, crawled):
        found = {r.url.split("/shop/", 1)[1]: r for r in results}
        assert sorted(found) == sorted(shop.PAGES)
        for path, result in found.items():
            assert result.fields == shop.expected(path), path
            if shop.ENCODINGS[path] is not None:
                assert result.encoding == shop.ENCODINGS[path], path


def _cli_rules() -> list[str]:
    return [f"{name}={rule}" for name, rule in shop.RULES.items()]


async def test_a_bad_rule_raises_config_error_before_anything_is_fetched() -> None:
    async with shop_site() as web:
        with pytest.raises(ConfigError, match="'t=css:title::txt'"):
            await collect(shoal.fetch([web.url(0, "/shop/")], extract={"t": "css:title::txt"}))
        with pytest.raises(ConfigError, match="'t=re:\\('"):
            await collect(shoal.crawl([web.url(0, "/shop/")], extract=["t=re:("]))
        with pytest.raises(ConfigError):
            shoal.Crawler(extract={"noindex": "css:title"})
        assert sum(h.requests for h in web.stats().hosts) == 0


@pytest.mark.parametrize(
    "limits",
    [{"max_pages": 10**30}, {"max_pages": 0}, {"max_pages": True}, {"depth": -1}, {"depth": 1.5}],
)
async def test_a_count_out_of_range_raises_config_error_before_any_fetch(
    limits: dict[str, object], tmp_path: Path
) -> None:
    async with shop_site() as web:
        with pytest.raises(ConfigError, match=next(iter(limits))):
            await collect(shoal.crawl([web.url(0, "/shop/")], store=tmp_path / "c.db", **limits))
        assert sum(h.requests for h in web.stats().hosts) == 0


async def test_crawler_calls_on_page_with_every_result_and_returns_the_summary(
    tmp_path: Path,
) -> None:
    seen: list[FetchResult] = []
    awaited: list[str] = []

    async def on_page(result: FetchResult) -> None:
        await asyncio.sleep(0)  # a real coroutine: awaited, one result at a time
        awaited.append(result.url)

    async with shop_site() as web:
        async with shoal.Crawler(
            store=str(tmp_path / "crawl.db"), config=FAST, extract=shop.RULES, on_page=seen.append
        ) as crawler:
            summary = await crawler.crawl([web.url(0, "/shop/")], obey_robots=False)
            assert summary.counts.done == len(shop.PAGES) and summary.counts.open == 0
            # A second job on the same store: a crawl job's name cannot be reused for a fetch.
            with pytest.raises(ConfigError, match="is a crawl job"):
                await crawler.fetch([web.url(0, "/shop/item/0")], job=host_of(web, 0))
        # The same store again, an async hook.
        async with shoal.Crawler(
            store=str(tmp_path / "crawl.db"), config=FAST, on_page=on_page
        ) as crawler:
            again = await crawler.fetch([web.url(0, "/shop/item/0")], job="one")
            assert again.counts.done == 1
        assert sorted(r.url for r in seen) == sorted(web.url(0, f"/shop/{p}") for p in shop.PAGES)
        assert all(r.fields == shop.expected(r.url.split("/shop/", 1)[1]) for r in seen)
        assert awaited == [web.url(0, "/shop/item/0")]
    with pytest.raises(ConfigError, match="open the Crawler first"):
        await crawler.crawl(["http://127.0.0.1/"])


@pytest.mark.parametrize(
    ("headers", "auth", "says"),
    [
        ({".".join(["a" * 50] * 6): {"X": "1"}}, None, "at most 253"),
        ({"a..b": {"X": "1"}}, None, "empty label"),
        ({"api.test": {"X-Key": "a\x00b"}}, None, "must not contain control characters"),
        ({"api.test": {"X-Key": "a\r\nX-Evil: 1"}}, None, "must not contain control"),
        (None, {"x" * 254: ("u", "p")}, "at most 253"),
    ],
)
def test_bad_hosts_and_header_values_are_config_errors(
    headers: dict[str, dict[str, str]] | None, auth: dict[str, tuple[str, str]] | None, says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        shoal.Crawler(headers=headers, auth=auth)


async def test_crawler_sends_headers_and_auth_per_host_and_never_stores_them(
    tmp_path: Path,
) -> None:
    rules = {"auth": "json:authorization", "token": "json:x-token", "ua": "json:user-agent"}
    asked: list[str] = []

    def headers_for(host: str) -> dict[str, str] | None:
        asked.append(host)
        return {"X-Token": f"for {host}"} if host == first else None

    db = tmp_path / "h.db"
    async with shop_site(hosts=3) as web:
        first, second, third = (host_of(web, i) for i in range(3))
        echo = [web.url(i, "/shop/echo") for i in range(3)]
        # The request's own headers (a JSON line) win over the per-host ones.
        own = json.dumps({"url": echo[1] + "?own", "headers": {"Authorization": "Mine"}})
        pages: dict[str, FetchResult] = {}
        async with shoal.Crawler(
            store=str(db),
            config=FAST,
            extract=rules,
            on_page=lambda r: pages.__setitem__(r.url, r),
            headers={second: {"Authorization": "Bearer s3cret"}, third.upper(): {"X-Token": "t"}},
            auth={third: ("user", "pa:ss")},
        ) as crawler:
            await crawler.fetch([*echo, own])
        async with shoal.Crawler(
            store=str(db), config=FAST, extract=rules, headers=headers_for
        ) as crawler:
            await crawler.fetch(echo, job="by-function")
    basic = "Basic " + base64.b64encode(b"user:pa:ss").decode()
    assert pages[echo[0]].fields == {"auth": None, "token": None, "ua": FAST.user_agent}
    assert pages[echo[1]].fields == {"auth": "Bearer s3cret", "token": None, "ua": FAST.user_agent}
    assert pages[echo[1] + "?own"].fields == {"auth": "Mine", "token": None, "ua": FAST.user_agent}
    assert pages[echo[2]].fields == {"auth": basic, "token": "t", "ua": FAST.user_agent}
    assert sorted(asked) == sorted([first, second, third])
    # Sent, not stored with the requests (only the echo page's extracted fields hold them).
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT url, headers FROM requests").fetchall()
    assert len(stored) == 7
    assert all(
        b"s3cret" not in bytes(str(row), "utf-8") and "Basic" not in str(row) for row in stored
    )


async def test_crawler_stop_from_a_hook_ends_the_job_gracefully(tmp_path: Path) -> None:
    seen: list[FetchResult] = []

    def on_page(result: FetchResult) -> None:
        seen.append(result)
        crawler.stop()

    async with TestWeb(SiteSpec(hosts=1, pages=20)) as web:
        urls = [web.url(0, f"/delay/100?n={i}") for i in range(40)]
        async with shoal.Crawler(
            store=str(tmp_path / "s.db"), per_host=2, config=FAST, on_page=on_page
        ) as crawler:
            summary = await crawler.fetch(urls)
    assert 1 <= summary.counts.finished == len(seen) < 40
    assert summary.counts.open == 40 - summary.counts.finished  # released, resumable


async def test_an_exception_from_on_page_stops_the_job_and_propagates(tmp_path: Path) -> None:
    def on_page(result: FetchResult) -> None:
        raise LookupError(f"cannot save {result.url}")

    async with TestWeb(SiteSpec(hosts=1, pages=20)) as web:
        urls = [web.url(0, f"/delay/100?n={i}") for i in range(30)]
        async with shoal.Crawler(
            store=str(tmp_path / "e.db"), per_host=2, config=FAST, on_page=on_page
        ) as crawler:
            with pytest.raises(LookupError, match="cannot save"):
                await crawler.fetch(urls, job="e")
            job = await crawler.store.get_job("e")
            assert job is not None
            counts = await crawler.store.counts(job.id)
    assert counts.finished < 30 and counts.leased == 0  # stopped; the rest released


@pytest.mark.parametrize(
    ("headers", "raised"),
    [
        (lambda host: 1 / 0, ZeroDivisionError),  # the hook's own error, as it was
        (lambda host: {"Bad\nName": "x"}, ConfigError),  # shoal's check of the answer
    ],
)
async def test_errors_inside_the_crawler_are_raised_unwrapped(
    headers: Callable[[str], Mapping[str, str]], raised: type[Exception]
) -> None:
    async with shop_site() as web:
        async with shoal.Crawler(config=FAST, headers=headers) as crawler:
            with pytest.raises(raised) as caught:
                await crawler.fetch([web.url(0, "/shop/")])
    assert not isinstance(caught.value, BaseExceptionGroup)


async def test_a_store_failure_inside_the_run_is_a_store_error_not_a_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> int:
        raise StoreError("disk on fire")

    monkeypatch.setattr(SQLiteStore, "complete", broken)
    async with shop_site() as web:
        with pytest.raises(StoreError, match="disk on fire"):
            await collect(shoal.fetch([web.url(0, "/shop/")], config=FAST))


async def test_a_bug_inside_the_run_is_a_shoal_error_that_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def buggy(self: object, result: FetchResult, body: bytes) -> None:
        raise TypeError("a bug")

    monkeypatch.setattr(FieldExtractor, "__call__", buggy)
    async with shop_site() as web:
        with pytest.raises(ShoalError, match="internal error: TypeError: a bug") as caught:
            await collect(shoal.fetch([web.url(0, "/shop/")], config=FAST, extract={"t": "css:t"}))
    assert isinstance(caught.value.__cause__, BaseExceptionGroup)


def test_unwrapping_prefers_shoal_errors_then_hook_errors_then_interrupts() -> None:
    inner = ExceptionGroup("inner", [ValueError("x"), InputError("bad")])
    assert isinstance(unwrapped(ExceptionGroup("outer", [RuntimeError("y"), inner])), InputError)
    assert isinstance(unwrapped(BaseExceptionGroup("g", [KeyboardInterrupt()])), KeyboardInterrupt)
    error = unwrapped(ExceptionGroup("g", [RuntimeError("y")]))
    assert type(error) is ShoalError and "RuntimeError: y" in str(error)


def test_fetch_all_returns_bodies_and_text_by_default(tmp_path: Path) -> None:
    with TestWeb.run_in_thread(SiteSpec(hosts=1, pages=10)) as web:
        urls = [web.url(0, f"/page/{n}") for n in range(3)]
        results = shoal.fetch_all(urls, config=FAST)
        assert len(results) == 3
        for result in results:
            assert result.body is not None and len(result.body) == result.bytes > 0
            assert result.text is not None and "<html" in result.text.lower()
            assert result.text == result.body.decode(result.encoding or "utf-8")
        plain = shoal.fetch_all(urls[:1], config=FAST, bodies=False)
        assert plain[0].body is None and plain[0].text is None


def test_text_decodes_by_the_recorded_encoding_or_the_content_type() -> None:
    body = "café".encode("cp1252")
    assert FetchResult(request_id=1, url="u", body=body, encoding="cp1252").text == "café"
    labelled = FetchResult(
        request_id=1, url="u", body=body, content_type="text/html; charset=windows-1252"
    )
    assert labelled.text == "café"


async def test_one_spec_gives_the_same_result_set_from_the_cli_and_the_api(
    tmp_path: Path,
) -> None:
    """The CLI stores the spec it built; the API runs that very spec; same runner, same
    result set."""
    async with TestWeb(SiteSpec(hosts=2, pages=40, links_per_page=3)) as web:
        seed = web.url(0, "/")
        ran = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "shoal",
                "crawl",
                seed,
                "--depth",
                "2",
                "--job",
                "c",
                "--scope",
                "any",
                "--ignore-robots",
                "--quiet",
                "--store",
                str(tmp_path / "cli.db"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ran.returncode == 0, ran.stderr
        async with shoal.Crawler(store=str(tmp_path / "cli.db")) as reader:
            stored = await reader.store.get_job("c")
            assert stored is not None
        spec = shoal.JobSpec.from_record("crawl", stored.config)
        assert spec.depth == 2 and spec.scope == "any" and not spec.robots
        async with shoal.Crawler(store=str(tmp_path / "api.db")) as crawler:
            summary = await crawler.run(spec, job="c")
            assert summary.counts.open == 0
        by_cli = _rows(tmp_path / "cli.db")
        assert by_cli == _rows(tmp_path / "api.db")
        assert len(by_cli) > 10


def _rows(db: Path) -> list[tuple[str, int | None, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT url, status, depth FROM results ORDER BY url").fetchall()
