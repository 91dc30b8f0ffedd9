"""-H, --header-for, --user and --bearer: what reaches which host, and that no secret is kept."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from shoal.testweb import SeenRequest, SiteSpec, TestWeb

from .conftest import run_shoal

PASSWORD = "pw-Zq8xK2"
BEARER = "tok-Rv93LmQ"
EVERY = "every-Hx71"
ONLY = "only-Jw55"


@pytest.fixture(scope="module")
def web() -> Iterator[TestWeb]:
    with TestWeb.run_in_thread(SiteSpec(hosts=2, pages=5)) as site:
        yield site


def seen_at(web: TestWeb, host: int, prefix: str) -> list[SeenRequest]:
    return [seen for seen in web.seen() if seen.host == host and seen.path.startswith(prefix)]


def crawl_seed(web: TestWeb) -> str:
    other = web.url(1, "/echo/other")
    return web.url(0, f"/echo/start?to={quote(other, safe='')}&to=%2Fprivate%2Fp")


def test_a_crawl_sends_headers_where_asked_and_credentials_only_to_the_seed_host(
    web: TestWeb, tmp_path: Path
) -> None:
    web.reset_stats()
    ran = run_shoal(
        "crawl",
        crawl_seed(web),
        "--scope",
        "any",
        "--ignore-robots",
        "-H",
        f"X-Every: {EVERY}",
        "--header-for",
        "127.0.0.3",
        f"X-Only: {ONLY}",
        "--user",
        f"alice:{PASSWORD}",
        "--quiet",
        cwd=tmp_path,
    )
    assert ran.code == 0, ran.stderr
    basic = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    (start,) = seen_at(web, 0, "/echo/start")
    (private,) = seen_at(web, 0, "/private/p")
    (other,) = seen_at(web, 1, "/echo/other")
    assert start.header("Authorization") == basic == private.header("Authorization")
    assert other.header("Authorization") is None  # another host: no credentials
    assert start.header("X-Every") == EVERY == other.header("X-Every")
    assert other.header("X-Only") == ONLY
    assert start.header("X-Only") is None and private.header("X-Only") is None


def test_bearer_goes_where_user_would_and_an_authorization_header_too(
    web: TestWeb, tmp_path: Path
) -> None:
    web.reset_stats()
    ran = run_shoal(
        "crawl", crawl_seed(web), "--scope", "any", "--ignore-robots", "--bearer", BEARER,
        "-H", "Cookie: c=1", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    (start,) = seen_at(web, 0, "/echo/start")
    (other,) = seen_at(web, 1, "/echo/other")
    assert start.header("Authorization") == f"Bearer {BEARER}"
    assert start.header("Cookie") == "c=1"
    assert other.header("Authorization") is None and other.header("Cookie") is None


def test_fetch_sends_credentials_to_each_input_url_never_across_a_redirect(
    web: TestWeb, tmp_path: Path
) -> None:
    web.reset_stats()
    landed = web.url(1, "/echo/landed")
    (tmp_path / "urls.txt").write_text(
        f"{web.url(0, '/private/direct')}\n"
        f"{web.url(0, '/redirect-to?url=' + quote(landed, safe=''))}\n"
    )
    ran = run_shoal(
        "fetch", "urls.txt", "--bearer", BEARER, "-H", f"X-Every: {EVERY}",
        "--header-for", "127.0.0.2", f"X-Only: {ONLY}", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    (direct,) = seen_at(web, 0, "/private/direct")
    (after,) = seen_at(web, 1, "/echo/landed")
    assert direct.header("Authorization") == f"Bearer {BEARER}"
    assert direct.header("X-Only") == ONLY and direct.header("X-Every") == EVERY
    # A redirect followed within one request keeps every given header to its origin.
    assert after.header("Authorization") is None
    assert after.header("X-Only") is None and after.header("X-Every") is None


def test_a_rerun_must_give_the_credentials_again(web: TestWeb, tmp_path: Path) -> None:
    seed = web.url(0, "/private/again")
    first = run_shoal(
        "crawl", seed, "--ignore-robots", "--user", f"bob:{PASSWORD}", "--quiet", cwd=tmp_path
    )
    assert first.code == 0, first.stderr
    forgot = run_shoal("crawl", seed, "--ignore-robots", "--quiet", cwd=tmp_path)
    assert forgot.code == 2
    assert "--user" in forgot.stderr and "not stored" in forgot.stderr
    assert "Traceback" not in forgot.stderr
    rotated = run_shoal("crawl", seed, "--ignore-robots", "--user", "bob:new", cwd=tmp_path)
    assert rotated.code == 0, rotated.stderr
    assert "resuming job" in rotated.stderr
    worker = run_shoal("worker", "--store", "shoal.db", "--job", "127.0.0.2", cwd=tmp_path)
    assert worker.code == 2 and "--user" in worker.stderr


def test_bad_headers_are_usage_errors_that_do_not_echo_the_value(tmp_path: Path) -> None:
    (tmp_path / "u.txt").write_text("http://127.0.0.1:9/\n")
    for args in (
        ("-H", "no colon here"),
        ("-H", "Bad Name: secret-value-1"),
        ("-H", "Host: x"),
        ("--user", "nocolon"),
        ("--user", "a:b", "--bearer", "secret-value-1"),
    ):
        ran = run_shoal("fetch", "u.txt", *args, cwd=tmp_path)
        assert ran.code == 2, (args, ran.stderr)
        assert "secret-value-1" not in ran.stderr and "Traceback" not in ran.stderr
        assert not (tmp_path / "shoal.db").exists()


def test_no_secret_reaches_the_store_an_export_or_a_log(web: TestWeb, tmp_path: Path) -> None:
    secrets = [PASSWORD, EVERY, ONLY, base64.b64encode(f"carol:{PASSWORD}".encode()).decode()]
    (tmp_path / "urls.txt").write_text(
        f"{web.url(0, '/private/leak')}\n{web.url(1, '/echo/leak')}\n"
        f'{{"url": "{web.url(0, "/echo/json")}", "headers": {{"Accept": "text/html"}}}}\n'
    )
    common = (
        "-H", f"X-Every: {EVERY}", "--header-for", "127.0.0.3", f"X-Only: {ONLY}",
        "--user", f"carol:{PASSWORD}",
    )  # fmt: skip
    fetched = run_shoal(
        "fetch", "urls.txt", *common, "--save-bodies", "-o", "out.jsonl", cwd=tmp_path
    )
    assert fetched.code == 0, fetched.stderr
    crawled = run_shoal(
        "crawl", crawl_seed(web), "--scope", "any", "--ignore-robots", *common,
        "-o", "crawl.warc.gz", cwd=tmp_path, env={"SHOAL_DEBUG": "1"},
    )  # fmt: skip
    assert crawled.code == 0, crawled.stderr
    logs = fetched.stdout + fetched.stderr + crawled.stdout + crawled.stderr
    for job, suffix in (("urls", "csv"), ("urls", "parquet"), ("127.0.0.2", "jsonl")):
        ran = run_shoal("export", "--job", job, "-o", f"{job}.{suffix}", cwd=tmp_path)
        assert ran.code == 0, ran.stderr
        logs += ran.stdout + ran.stderr
    outputs = {
        path.name: path.read_bytes()
        for path in tmp_path.iterdir()
        if path.is_file() and path.name != "urls.txt"
    }
    outputs["crawl.warc"] = gzip.decompress(outputs.pop("crawl.warc.gz"))
    assert {"shoal.db", "out.jsonl", "urls.csv", "urls.parquet", "127.0.0.2.jsonl"} <= set(outputs)
    for secret in secrets:
        assert secret not in logs
        for name, data in outputs.items():
            assert secret.encode() not in data, (secret, name)
    # ...and they were sent.
    assert seen_at(web, 1, "/echo/leak")[-1].header("X-Only") == ONLY
    assert seen_at(web, 0, "/private/leak")[-1].header("Authorization") is not None
