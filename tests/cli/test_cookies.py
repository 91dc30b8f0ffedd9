"""Cookies: a run keeps the session a site sets, per host; cookies.txt in and out."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from shoal.testweb import SiteSpec, TestWeb

from .conftest import result_rows, run_shoal


@pytest.fixture(scope="module")
def web() -> Iterator[TestWeb]:
    with TestWeb.run_in_thread(SiteSpec(hosts=2, pages=5)) as site:
        yield site


def member_statuses(db: Path, job: str) -> dict[str, int | None]:
    return {url.rsplit("/", 2)[-2] + "/" + url.rsplit("/", 1)[-1]: status
            for url, status, _ in result_rows(db, job) if "/members/" in url}  # fmt: skip


def test_a_crawl_keeps_the_session_a_login_page_sets(web: TestWeb, tmp_path: Path) -> None:
    web.reset_stats()
    ran = run_shoal(
        "crawl", web.url(0, "/login"), "--ignore-robots", "--job", "in",
        "--save-cookies", "jar.txt", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert member_statuses(tmp_path / "shoal.db", "in") == {
        "members/0": 200, "members/1": 200, "members/2": 200,
    }  # fmt: skip
    members = [seen for seen in web.seen() if seen.path.startswith("/members/")]
    assert len(members) == 3
    assert all(seen.header("Cookie") == "session=s3cr3t-session" for seen in members)
    jar = (tmp_path / "jar.txt").read_text()
    assert "Netscape HTTP Cookie File" in jar and "s3cr3t-session" in jar
    assert (tmp_path / "jar.txt").stat().st_mode & 0o077 == 0


def test_no_cookies_sends_none_and_a_cookies_file_starts_the_session(
    web: TestWeb, tmp_path: Path
) -> None:
    web.reset_stats()
    off = run_shoal(
        "crawl", web.url(0, "/login"), "--ignore-robots", "--job", "off", "--no-cookies",
        "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert off.code == 0, off.stderr
    assert member_statuses(tmp_path / "shoal.db", "off") == {"members/0": 403}
    assert all(seen.header("Cookie") is None for seen in web.seen())

    saved = run_shoal(
        "crawl", web.url(0, "/login"), "--ignore-robots", "--job", "save", "--depth", "0",
        "--save-cookies", "jar.txt", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert saved.code == 0, saved.stderr
    web.reset_stats()
    (tmp_path / "urls.txt").write_text(f"{web.url(0, '/members/1')}\n{web.url(1, '/echo/x')}\n")
    fetched = run_shoal("fetch", "urls.txt", "--cookies", "jar.txt", "--quiet", cwd=tmp_path)
    assert fetched.code == 0, fetched.stderr
    (member,) = [seen for seen in web.seen() if seen.path == "/members/1"]
    (other,) = [seen for seen in web.seen() if seen.path == "/echo/x"]
    assert member.header("Cookie") == "session=s3cr3t-session"
    assert other.header("Cookie") is None  # another host gets none of it


def test_a_cookie_never_follows_a_redirect_to_another_origin(web: TestWeb, tmp_path: Path) -> None:
    saved = run_shoal(
        "crawl", web.url(0, "/login"), "--ignore-robots", "--job", "s", "--depth", "0",
        "--save-cookies", "jar.txt", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert saved.code == 0, saved.stderr
    web.reset_stats()
    away = web.url(1, "/echo/away")
    (tmp_path / "urls.txt").write_text(web.url(0, "/redirect-to?url=" + quote(away, safe="")))
    fetched = run_shoal("fetch", "urls.txt", "--cookies", "jar.txt", "--quiet", cwd=tmp_path)
    assert fetched.code == 0, fetched.stderr
    (landed,) = [seen for seen in web.seen() if seen.path == "/echo/away"]
    assert landed.header("Cookie") is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cookies", "missing.txt"), "missing.txt"),
        (("--cookies", "bad.txt"), "not a Netscape cookies.txt"),
        (("--no-cookies", "--save-cookies", "x.txt"), "contradict"),
    ],
)
def test_bad_cookie_options_are_usage_errors(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "bad.txt").write_text("this is not a cookie file\n")
    (tmp_path / "u.txt").write_text("http://127.0.0.1:9/\n")
    ran = run_shoal("fetch", "u.txt", *args, cwd=tmp_path)
    assert ran.code == 2 and message in ran.stderr and "Traceback" not in ran.stderr
    assert not (tmp_path / "shoal.db").exists()


def test_a_resumed_job_keeps_its_session(web: TestWeb, tmp_path: Path) -> None:
    (tmp_path / "login.txt").write_text(web.url(0, "/login") + "\n")
    first = run_shoal("fetch", "login.txt", "--job", "sess", "--quiet", cwd=tmp_path)
    assert first.code == 0, first.stderr
    web.reset_stats()
    (tmp_path / "more.txt").write_text(web.url(0, "/members/2") + "\n")
    again = run_shoal("fetch", "more.txt", "--job", "sess", cwd=tmp_path)
    assert again.code == 0, again.stderr
    assert "1 cookies kept from earlier runs" in again.stderr
    (member,) = [seen for seen in web.seen() if seen.path == "/members/2"]
    assert member.header("Cookie") == "session=s3cr3t-session"
    assert member_statuses(tmp_path / "shoal.db", "sess") == {"members/2": 200}


def test_the_jars_limits_hold_at_the_server(web: TestWeb, tmp_path: Path) -> None:
    """A host setting 60 cookies and one of 5,000 bytes gets back 50 (the per-host limit),
    none over 4,096 bytes (name and value): what the next request to it carries."""
    web.reset_stats()
    ran = run_shoal(
        "crawl", web.url(1, "/cookie-flood?n=60&big=5000"), "--ignore-robots", "--job", "flood",
        "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    [after] = [seen for seen in web.seen() if seen.path == "/echo/after-flood"]
    header = after.header("Cookie")
    assert header is not None
    cookies = dict(pair.split("=", 1) for pair in header.split("; "))
    assert len(cookies) == 50
    assert "big" not in cookies
    assert all(name.startswith("c") and value == "v" for name, value in cookies.items())
    assert max(len(name) + len(value) for name, value in cookies.items()) <= 4096


def test_a_run_whose_jar_did_not_change_writes_no_jar(web: TestWeb, tmp_path: Path) -> None:
    """Nothing to keep, nothing written: a run without cookies leaves no jar row, and a run
    that adds one stores it (a full disk then costs no extra failed write)."""
    (tmp_path / "plain.txt").write_text(web.url(1, "/page/1") + "\n")
    assert run_shoal("fetch", "plain.txt", "--job", "plain", "--quiet", cwd=tmp_path).code == 0
    (tmp_path / "login.txt").write_text(web.url(0, "/login") + "\n")
    assert run_shoal("fetch", "login.txt", "--job", "sess", "--quiet", cwd=tmp_path).code == 0
    with sqlite3.connect(tmp_path / "shoal.db") as conn:
        kept = dict(
            conn.execute(
                "SELECT j.name, c.data FROM job_cookies c JOIN jobs j ON j.id = c.job_id"
            ).fetchall()
        )
    assert set(kept) == {"sess"}
    assert "s3cr3t-session" in kept["sess"]
