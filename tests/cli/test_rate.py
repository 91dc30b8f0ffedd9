"""--rate: request starts over all hosts, measured at the server."""

from __future__ import annotations

from pathlib import Path

from shoal.testweb import SiteSpec, TestWeb

from .conftest import run_shoal

RATE = 20.0
URLS = 21


def test_rate_spaces_request_starts_over_all_hosts(tmp_path: Path) -> None:
    with TestWeb.run_in_thread(SiteSpec(hosts=3, pages=10)) as web:
        urls = [web.url(n % 3, f"/static/{n}") for n in range(URLS)]
        (tmp_path / "urls.txt").write_text("\n".join(urls) + "\n")
        ran = run_shoal("fetch", "urls.txt", "--rate", f"{RATE:g}/s", "--quiet", cwd=tmp_path)
        assert ran.code == 0, ran.stderr
        starts = sorted(record.start for host in web.stats().hosts for record in host.log)
    assert len(starts) == URLS
    # Each start waits for its token: however loaded the machine, the starts cannot be
    # closer together on the whole than the rate allows (a little slack for the clocks
    # of two processes seeing one start at slightly different moments).
    assert starts[-1] - starts[0] >= (URLS - 1) / RATE * 0.9


def test_a_bad_rate_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "u.txt").write_text("http://127.0.0.1:9/\n")
    ran = run_shoal("fetch", "u.txt", "--rate", "fast", cwd=tmp_path)
    assert ran.code == 2 and "N/s" in ran.stderr and "Traceback" not in ran.stderr
