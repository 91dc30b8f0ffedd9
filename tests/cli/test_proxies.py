"""--proxy, --proxies, the proxy environment variables: asserted at the proxy and the site."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.testweb import SiteSpec, TestWeb
from shoal.testweb.proxy import ForwardProxy
from shoal.testweb.socks import Socks5Proxy

from .conftest import result_rows, run_shoal

NO_ENV = {"http_proxy": "", "HTTP_PROXY": "", "all_proxy": "", "ALL_PROXY": "", "no_proxy": "",
          "NO_PROXY": ""}  # fmt: skip


@pytest.fixture(scope="module")
def web() -> Iterator[TestWeb]:
    with TestWeb.run_in_thread(SiteSpec(hosts=2, pages=20)) as site:
        yield site


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy.run_in_thread() as running:
        yield running


def write_urls(web: TestWeb, path: Path, count: int, host: int = 0) -> list[str]:
    urls = [web.url(host, f"/static/{n}") for n in range(count)]
    path.write_text("\n".join(urls) + "\n")
    return urls


def test_proxy_carries_every_request(web: TestWeb, proxy: ForwardProxy, tmp_path: Path) -> None:
    urls = write_urls(web, tmp_path / "urls.txt", 5)
    ran = run_shoal("fetch", "urls.txt", "--proxy", proxy.url, "--quiet", cwd=tmp_path, env=NO_ENV)
    assert ran.code == 0, ran.stderr
    assert sorted(p.target for p in proxy.passed()) == sorted(urls)
    assert {status for _, status, _ in result_rows(tmp_path / "shoal.db", "urls")} == {200}


def test_the_proxy_environment_is_honoured_unless_told_not_to(
    web: TestWeb, proxy: ForwardProxy, tmp_path: Path
) -> None:
    urls = write_urls(web, tmp_path / "urls.txt", 3)
    env = {**NO_ENV, "http_proxy": proxy.url}
    ran = run_shoal("fetch", "urls.txt", "--quiet", cwd=tmp_path, env=env)
    assert ran.code == 0, ran.stderr
    assert sorted(p.target for p in proxy.passed()) == sorted(urls)

    write_urls(web, tmp_path / "again.txt", 3, host=1)
    direct = run_shoal("fetch", "again.txt", "--no-proxy-env", "--quiet", cwd=tmp_path, env=env)
    assert direct.code == 0, direct.stderr
    bypass = {**env, "no_proxy": "127.0.0.3"}
    write_urls(web, tmp_path / "bypass.txt", 4, host=1)
    skipped = run_shoal("fetch", "bypass.txt", "--quiet", cwd=tmp_path, env=bypass)
    assert skipped.code == 0, skipped.stderr
    assert len(proxy.passed()) == 3  # neither of the last two went through it
    assert {status for _, status, _ in result_rows(tmp_path / "shoal.db", "bypass")} == {200}


def test_a_failing_proxy_is_taken_out_and_the_others_carry_the_job(
    web: TestWeb, proxy: ForwardProxy, tmp_path: Path
) -> None:
    urls = write_urls(web, tmp_path / "urls.txt", 12)
    (tmp_path / "proxies.txt").write_text(f"# two proxies\nhttp://127.0.0.1:1\n{proxy.url}\n")
    ran = run_shoal("fetch", "urls.txt", "--proxies", "proxies.txt", "--per-host", "1",
                    cwd=tmp_path, env=NO_ENV)  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert {status for _, status, _ in result_rows(tmp_path / "shoal.db", "urls")} == {200}
    assert sorted({p.target for p in proxy.passed()}) == sorted(urls)
    assert "failing proxy taken out 1 times" in ran.stderr
    with sqlite3.connect(tmp_path / "shoal.db") as db:
        assert {row[0] for row in db.execute("SELECT proxy FROM results")} == {proxy.url}


def test_proxy_credentials_are_sent_and_never_stored(web: TestWeb, tmp_path: Path) -> None:
    secret = "prox-Pw77"
    required = "Basic " + base64.b64encode(f"pu:{secret}".encode()).decode()
    with ForwardProxy.run_in_thread(require=required) as proxy:
        write_urls(web, tmp_path / "urls.txt", 2)
        with_auth = proxy.url.replace("://", f"://pu:{secret}@")
        ran = run_shoal("fetch", "urls.txt", "--proxy", with_auth, "-o", "out.jsonl",
                        cwd=tmp_path, env=NO_ENV)  # fmt: skip
        assert ran.code == 0, ran.stderr
        assert all(p.header("Proxy-Authorization") == required for p in proxy.passed())
        records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
        assert {record["proxy"] for record in records} == {proxy.url}  # without credentials
    assert {status for _, status, _ in result_rows(tmp_path / "shoal.db", "urls")} == {200}
    for path in tmp_path.iterdir():
        assert secret.encode() not in path.read_bytes(), path.name
    assert secret not in ran.stderr + ran.stdout


def test_a_socks5_proxy_tunnels_every_connection(web: TestWeb, tmp_path: Path) -> None:
    with Socks5Proxy.run_in_thread() as socks:
        urls = write_urls(web, tmp_path / "urls.txt", 4)
        write_urls(web, tmp_path / "other.txt", 2, host=1)
        ran = run_shoal("fetch", "urls.txt", "--proxy", socks.url, "--quiet", cwd=tmp_path,
                        env=NO_ENV)  # fmt: skip
        assert ran.code == 0, ran.stderr
        tunnels = socks.connected()
        other = run_shoal("fetch", "other.txt", "--proxy", socks.url, "--quiet", cwd=tmp_path,
                          env=NO_ENV)  # fmt: skip
        assert other.code == 0, other.stderr
        more = socks.connected()[len(tunnels) :]
    host0 = urls[0].split("/")[2]
    assert tunnels and set(tunnels) == {host0}  # kept alive: a tunnel serves many requests
    assert set(more) == {web.url(1, "/").split("/")[2]}
    assert {status for _, status, _ in result_rows(tmp_path / "shoal.db", "urls")} == {200}


def test_a_socks_proxy_that_refuses_is_a_connect_error(web: TestWeb, tmp_path: Path) -> None:
    write_urls(web, tmp_path / "urls.txt", 1)
    ran = run_shoal("fetch", "urls.txt", "--proxy", "socks5://127.0.0.1:1", "--retries", "0",
                    "--quiet", cwd=tmp_path, env=NO_ENV)  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert [kind for _, _, kind in result_rows(tmp_path / "shoal.db", "urls")] == ["connect_error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--proxies", "socks.txt"), "does not rotate"),
        (("--proxy", "ftp://u:hidden@h:1"), "a proxy is"),
        (("--proxies", "missing.txt"), "missing.txt"),
        (("--proxy", "http://h:1", "--proxies", "p.txt"), "not both"),
    ],
)
def test_bad_proxies_are_usage_errors(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    (tmp_path / "u.txt").write_text("http://127.0.0.1:9/\n")
    (tmp_path / "p.txt").write_text("http://h:1\n")
    (tmp_path / "socks.txt").write_text("socks5://h:1\nhttp://h:2\n")
    ran = run_shoal("fetch", "u.txt", *args, cwd=tmp_path)
    assert ran.code == 2 and message in ran.stderr, ran.stderr
    assert "hidden" not in ran.stderr and "Traceback" not in ran.stderr
