"""Secrets a user gives stay with their origin and never leave the process.

* A request's own headers (a JSON input line's, the API's per host, Basic auth from
  ``user:pass@`` in a URL) follow a redirect only within their origin.
* "Secrets never leave": for each way a user can give a secret, the store file, every
  export format, ``-o`` files and the logs (SHOAL_DEBUG=1, the most verbose) are
  searched for it. Each way is one ``SecretCase``: a new way to give a secret (a
  ``--header`` flag, say) is one more entry in ``CLI_CASES`` or ``API_CASES``.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

import shoal
from shoal.core.config import CrawlConfig, Limits, Timeouts
from shoal.testweb import SiteSpec, TestWeb

from . import shop

SECRET = "s3cr3t-7f1c9a"
FAST = CrawlConfig(limits=Limits(concurrency=8), timeouts=Timeouts(total=10, connect=3, read=5))
SAVING = dataclasses.replace(FAST, save_bodies=True)  # so that WARC can be exported
ECHO_RULES = {"key": "json:x-api-key", "auth": "json:authorization"}


@pytest.fixture(scope="module")
def web() -> Iterator[TestWeb]:
    with TestWeb.run_in_thread(SiteSpec(hosts=2, pages=10), extra_routes=shop.routes) as site:
        yield site


def host(web: TestWeb, index: int) -> str:
    return web.url(index, "/").split("//")[1].rstrip("/")


def redirect(web: TestWeb, source: int, target: str) -> str:
    return web.url(source, "/redirect-to?url=" + quote(target, safe=""))


def with_userinfo(url: str, userinfo: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{userinfo}@{rest}"


# --- headers stay with their origin ------------------------------------------------


async def test_headers_and_credentials_follow_redirects_within_their_origin(
    web: TestWeb,
) -> None:
    a_echo, b_echo = web.url(0, "/shop/echo"), web.url(1, "/shop/echo")
    same, other = redirect(web, 0, a_echo + "?same"), redirect(web, 0, b_echo + "?other")
    line = {"X-Api-Key": "line-key", "Authorization": "Bearer line"}
    basic = "Basic " + base64.b64encode(b"user:pw").decode()
    inputs = [
        json.dumps({"url": same, "headers": line}),
        json.dumps({"url": other, "headers": line}),
        with_userinfo(redirect(web, 0, a_echo + "?creds-same"), "user:pw"),
        with_userinfo(redirect(web, 0, b_echo + "?creds-other"), "user:pw"),
    ]
    fetched = [r async for r in shoal.fetch(inputs, config=FAST, extract=ECHO_RULES)]
    found = {r.final_url: r.fields for r in fetched}
    assert found[a_echo + "?same"] == {"key": "line-key", "auth": "Bearer line"}
    assert found[b_echo + "?other"] == {"key": None, "auth": None}
    assert found[a_echo + "?creds-same"] == {"key": None, "auth": basic}
    assert found[b_echo + "?creds-other"] == {"key": None, "auth": None}

    # The API's per-host headers likewise.
    results: list[shoal.FetchResult] = []
    async with shoal.Crawler(
        config=FAST,
        extract=ECHO_RULES,
        on_page=results.append,
        headers={host(web, 0).split(":")[0]: {"X-Api-Key": "host-key"}},
    ) as crawler:
        await crawler.fetch([same, other])
    fields = {r.final_url: r.fields for r in results}
    assert fields[a_echo + "?same"] == {"key": "host-key", "auth": None}
    assert fields[b_echo + "?other"] == {"key": None, "auth": None}


# --- secrets never leave -------------------------------------------------------------


def shoal_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env["SHOAL_DEBUG"] = "1"  # every log line there is
    return subprocess.run(
        [sys.executable, "-m", "shoal", *args], cwd=cwd, capture_output=True, env=env, timeout=120
    )


def pages(web: TestWeb) -> list[str]:
    """A page, a redirect within the origin and one to another origin."""
    return [
        web.url(0, "/page/1"),
        redirect(web, 0, web.url(0, "/page/2")),
        redirect(web, 0, web.url(1, "/page/3")),
    ]


@dataclass(frozen=True)
class SecretCase:
    """One way to give a secret: a ``shoal`` command line with its input file, or a use
    of the Python API on a store file."""

    cli: Callable[[TestWeb], tuple[list[str], str]] | None = None
    api: Callable[[TestWeb, str], object] | None = None


def _json_lines(web: TestWeb) -> tuple[list[str], str]:
    headers = {"X-Api-Key": SECRET, "Authorization": f"Bearer {SECRET}", "Cookie": f"s={SECRET}"}
    lines = [json.dumps({"url": url, "headers": headers}) for url in pages(web)]
    return ["fetch", "given/in.txt"], "\n".join(lines) + "\n"


def _userinfo(web: TestWeb) -> tuple[list[str], str]:
    lines = [with_userinfo(url, f"user:{SECRET}") for url in pages(web)]
    return ["fetch", "given/in.txt"], "\n".join(lines) + "\n"


def _crawl_seed(web: TestWeb) -> tuple[list[str], str]:
    seed = with_userinfo(web.url(0, "/"), f"user:{SECRET}")
    return ["crawl", seed, "--max-pages", "5"], ""


CLI_CASES: dict[str, SecretCase] = {
    "json-line-headers": SecretCase(cli=_json_lines),
    "url-userinfo": SecretCase(cli=_userinfo),
    "crawl-seed-userinfo": SecretCase(cli=_crawl_seed),
}


async def _api_headers(web: TestWeb, store: str) -> None:
    async with shoal.Crawler(
        store=store,
        config=SAVING,
        headers={host(web, 0).split(":")[0]: {"X-Api-Key": SECRET}},
    ) as crawler:
        await crawler.fetch(pages(web), job="j")


async def _api_auth(web: TestWeb, store: str) -> None:
    async with shoal.Crawler(
        store=store, config=SAVING, auth={host(web, 0).split(":")[0]: ("u", SECRET)}
    ) as crawler:
        await crawler.fetch(pages(web), job="j")


async def _api_json_lines(web: TestWeb, store: str) -> None:
    lines = [json.dumps({"url": u, "headers": {"X-Api-Key": SECRET}}) for u in pages(web)]
    async with shoal.Crawler(store=store, config=SAVING) as crawler:
        await crawler.fetch(lines, job="j")


async def _api_userinfo(web: TestWeb, store: str) -> None:
    urls = [with_userinfo(u, f"u:{SECRET}") for u in pages(web)]
    async with shoal.Crawler(store=store, config=SAVING) as crawler:
        await crawler.fetch(urls, job="j")
        await crawler.crawl([with_userinfo(web.url(0, "/"), f"u:{SECRET}")], job="c", depth=1)


API_CASES: dict[str, SecretCase] = {
    "api-headers": SecretCase(api=_api_headers),
    "api-auth": SecretCase(api=_api_auth),
    "api-json-lines": SecretCase(api=_api_json_lines),
    "api-url-userinfo": SecretCase(api=_api_userinfo),
}


def forms_of_the_secret() -> list[bytes]:
    """The secret as it would appear if it leaked: itself, and in a Basic token."""
    forms = [SECRET.encode()]
    for user in ("user", "u"):
        forms.append(base64.b64encode(f"{user}:{SECRET}".encode()))
    return forms


def assert_nowhere(directory: Path, extra: dict[str, bytes]) -> None:
    texts = dict(extra)
    for path in directory.iterdir():
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
            texts[path.name] = data
    assert any(name.endswith(".db") for name in texts), sorted(texts)
    leaks = [name for name, data in texts.items() for form in forms_of_the_secret() if form in data]
    assert not leaks, f"the secret is in {sorted(set(leaks))}"


def export_everything(directory: Path, job: str, store: str) -> dict[str, bytes]:
    logs: dict[str, bytes] = {}
    for name in ("x.jsonl", "x.csv", "x.parquet", "x.warc.gz"):
        ran = shoal_cli("export", "--store", store, "--job", job, "-o", name, cwd=directory)
        assert ran.returncode == 0, ran.stderr
        logs[f"export {name} stderr"] = ran.stderr
    return logs


@pytest.mark.parametrize("case", CLI_CASES.values(), ids=list(CLI_CASES))
def test_secrets_given_to_the_command_never_leave(
    case: SecretCase, web: TestWeb, tmp_path: Path
) -> None:
    assert case.cli is not None
    args, text = case.cli(web)
    # The input holds the secret, of course: it sits apart from what is searched.
    (tmp_path / "given").mkdir()
    (tmp_path / "given" / "in.txt").write_text(text)
    ran = shoal_cli(*args, "--store", "s.db", "--save-bodies", "-o", "live.jsonl", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    rows = [json.loads(line) for line in (tmp_path / "live.jsonl").read_text().splitlines()]
    assert rows and all(row["status"] == 200 for row in rows), rows
    stats = shoal_cli("stats", "--store", "s.db", cwd=tmp_path)
    logs = {"run stderr": ran.stderr, "run stdout": ran.stdout, "stats": stats.stdout}
    logs.update(export_everything(tmp_path, _only_job(tmp_path / "s.db"), "s.db"))
    assert_nowhere(tmp_path, logs)


@pytest.mark.parametrize("case", API_CASES.values(), ids=list(API_CASES))
async def test_secrets_given_to_the_api_never_leave(
    case: SecretCase, web: TestWeb, tmp_path: Path
) -> None:
    assert case.api is not None
    await case.api(web, str(tmp_path / "s.db"))  # type: ignore[misc]
    logs: dict[str, bytes] = {}
    for job_name in ("j", "c") if case.api is _api_userinfo else ("j",):
        logs.update(export_everything(tmp_path, job_name, "s.db"))
    assert_nowhere(tmp_path, logs)


def _only_job(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        ((name,),) = conn.execute("SELECT name FROM jobs").fetchall()
    conn.close()
    return str(name)


def test_held_headers_are_sent_again_after_an_interrupted_run(web: TestWeb, tmp_path: Path) -> None:
    """The store keeps ``<redacted>``; a resumed run reads its input again first, so the
    requests left open are sent with their headers, not without them."""
    lines = [
        json.dumps({"url": web.url(0, f"/shop/echo?n={n}"), "headers": {"X-Api-Key": f"k{n}"}})
        for n in range(120)
    ]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    args = ["fetch", "in.txt", "--per-host", "1", "--delay", "0.05", "--quiet"]
    args += ["--extract", "key=json:x-api-key", "--processes", "0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    first = subprocess.Popen(
        [sys.executable, "-m", "shoal", *args], cwd=tmp_path, env=env, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while _count(tmp_path / "shoal.db") < 10:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run recorded nothing"
            time.sleep(0.05)
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert first.returncode == 130
    with sqlite3.connect(tmp_path / "shoal.db") as conn:
        stored = {h for (h,) in conn.execute("SELECT headers FROM requests")}
    conn.close()
    assert stored == {'[["X-Api-Key","<redacted>"]]'}
    ran = subprocess.run(
        [sys.executable, "-m", "shoal", *args, "-o", "out.jsonl"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 120
    assert all(row["fields"]["key"] == "k" + row["url"].rsplit("=", 1)[1] for row in rows)


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            (n,) = conn.execute("SELECT count(*) FROM results").fetchone()
        conn.close()
        return int(n)
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0
