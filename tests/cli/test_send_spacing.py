"""``--delay`` as the server sees it, with fetch processes on and the command busy.

The server times each request's start. The sender keeps the gap by construction: a
host's turn is held until its request is written, and a host moves between the
command and its fetch processes only between requests, the new sender counting from
the last answer (tests/engine/test_spacing.py, tests/engine/test_fetchpool.py). A
request the server gets to late (its thread kept off the CPU on a machine shared with
other work) is dated by when it arrived, to the kernel's clock tick (a few ms).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.testweb import SiteSpec, TestWeb

from .conftest import result_rows, run_shoal
from .test_fetch_command import write_urls

HOSTS = 6
SHORT_SHARE = 0.10  # of the gaps, at most, under half the delay ...
# ... for a delay this long at least: the server's kernel dates arrivals to its clock
# tick, up to 4 ms, a good part of a shorter delay.
SHARP_FROM = 0.05


@pytest.fixture(scope="module")
def spaced_site() -> Iterator[TestWeb]:
    with TestWeb.run_in_thread(SiteSpec(hosts=HOSTS, pages=400, latency_ms=2)) as web:
        yield web


@pytest.mark.parametrize("delay", [0.05, 0.01])
def test_the_delay_holds_where_requests_are_sent(
    spaced_site: TestWeb, tmp_path: Path, delay: float
) -> None:
    # Enough hosts and pages that the command is busy (and the two fetch processes with
    # it) while each host's requests go out one delay apart.
    per_host = round(1.0 / delay)
    urls = [spaced_site.url(h, f"/page/{n}") for h in range(HOSTS) for n in range(per_host)]
    write_urls(tmp_path / "urls.txt", urls)
    spaced_site.reset_stats()
    ran = run_shoal(
        "fetch", "urls.txt", "--per-host", "2", "--delay", str(delay), "--processes", "2",
        "--concurrency", "64", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert len(result_rows(tmp_path / "shoal.db", "urls")) == len(urls)
    gaps: list[float] = []
    for host in spaced_site.stats().hosts:
        assert host.requests == per_host
        starts = sorted(record.start for record in host.log)
        # Never more requests over the run than the delay allows.
        assert starts[-1] - starts[0] >= (per_host - 1) * delay * 0.95, host.address
        gaps += [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    gaps.sort()
    assert gaps[len(gaps) // 2] >= delay * 0.98, gaps[len(gaps) // 2]
    if delay >= SHARP_FROM:
        short = [gap for gap in gaps if gap < delay / 2]
        assert len(short) <= SHORT_SHARE * len(gaps), (len(short), len(gaps), gaps[:10])
