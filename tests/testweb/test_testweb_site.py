"""The link graph is a pure, stable function of the spec."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from shoal.testweb import (
    PageRef,
    SiteSpec,
    expected_pages,
    index_links,
    is_error_page,
    links_from,
    page_links,
    reachable,
)
from shoal.testweb.site import href_for


def test_same_spec_same_graph() -> None:
    spec = SiteSpec(hosts=3, pages=40, cross_host_links=0.4, seed=3)
    again = SiteSpec(hosts=3, pages=40, cross_host_links=0.4, seed=3)
    for host in range(3):
        assert index_links(spec, host) == index_links(again, host)
        for page in range(40):
            assert page_links(spec, host, page) == page_links(again, host, page)


def test_seed_changes_graph() -> None:
    one, other = SiteSpec(pages=50, seed=1), SiteSpec(pages=50, seed=2)
    assert [page_links(one, 0, n) for n in range(50)] != [
        page_links(other, 0, n) for n in range(50)
    ]


def test_golden_values_do_not_drift() -> None:
    # Benchmarks and recorded results compare runs across versions: the graph must not move.
    spec = SiteSpec(hosts=3, pages=50, cross_host_links=0.3, seed=7)
    assert page_links(spec, 1, 10) == [(1, 11), (1, 20), (1, 46), (1, 19), (1, 5)]
    assert index_links(spec, 2) == [(2, 0), (2, 47), (2, 22), (2, 31)]
    errors = SiteSpec(pages=1000, error_rate=0.1)
    assert [n for n in range(40) if is_error_page(errors, 0, n)] == [7, 23]


def test_graph_is_the_same_in_another_process() -> None:
    spec = SiteSpec(hosts=2, pages=30, cross_host_links=0.5, seed=11)
    code = (
        "import json; from shoal.testweb import SiteSpec, page_links\n"
        "spec = SiteSpec(hosts=2, pages=30, cross_host_links=0.5, seed=11)\n"
        "print(json.dumps([page_links(spec, h, n) for h in range(2) for n in range(30)]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    here = [page_links(spec, h, n) for h in range(2) for n in range(30)]
    assert json.loads(out.stdout) == [[list(ref) for ref in links] for links in here]


def test_page_links_shape() -> None:
    spec = SiteSpec(hosts=2, pages=20, links_per_page=4, cross_host_links=0.5)
    for host in range(2):
        for page in range(20):
            links = page_links(spec, host, page)
            assert len(links) == 4
            assert all(0 <= ref.host < 2 and ref.page is not None for ref in links)
            assert all(0 <= ref.page < 20 for ref in links if ref.page is not None)
            if page + 1 < 20:
                assert links[0] == PageRef(host, page + 1)
    assert index_links(spec, 1)[0] == PageRef(1, 0)


def test_cross_host_fraction_is_roughly_honoured() -> None:
    spec = SiteSpec(hosts=4, pages=500, links_per_page=5, cross_host_links=0.25)
    links = [ref for page in range(500) for ref in page_links(spec, 0, page)[1:]]
    share = sum(ref.host != 0 for ref in links) / len(links)
    assert 0.2 < share < 0.3
    no_cross = SiteSpec(hosts=4, pages=100, cross_host_links=0.0)
    assert all(ref.host == 0 for n in range(100) for ref in page_links(no_cross, 0, n))


def test_every_page_is_reachable() -> None:
    spec = SiteSpec(hosts=2, pages=300, links_per_page=2, seed=5)
    for host in range(2):
        found = reachable(spec, host=host)
        assert found == {PageRef(host, None), *(PageRef(host, n) for n in range(300))}


def test_depth_limits() -> None:
    spec = SiteSpec(pages=100)
    assert reachable(spec, depth=0) == {PageRef(0, None)}
    assert reachable(spec, depth=1) == {PageRef(0, None), *index_links(spec, 0)}
    sizes = [len(reachable(spec, depth=d)) for d in range(10)]
    assert sizes == sorted(sizes)
    assert sizes[-1] == 101
    # Depth d+1 is depth d plus everything linked from it.
    for depth in range(5):
        inner = reachable(spec, depth=depth)
        outer = reachable(spec, depth=depth + 1)
        assert outer == inner | {t for ref in inner for t in links_from(spec, ref)}
    with pytest.raises(ValueError, match="depth"):
        reachable(spec, depth=-1)


def test_cross_host_reachability() -> None:
    spec = SiteSpec(hosts=3, pages=30, cross_host_links=0.5)
    everything = reachable(spec)
    assert {ref.host for ref in everything} == {0, 1, 2}
    # Other hosts' pages are reached through links only: their index is not.
    assert PageRef(1, None) not in everything
    assert {ref.host for ref in reachable(spec, cross_host=False)} == {0}
    both_roots = reachable(spec, host=[0, 1], cross_host=False)
    assert {ref.host for ref in both_roots} == {0, 1}


def test_error_pages_are_fetched_but_not_followed() -> None:
    spec = SiteSpec(pages=200, error_rate=0.3, seed=2)
    errors = {n for n in range(200) if is_error_page(spec, 0, n)}
    assert 0.2 * 200 < len(errors) < 0.4 * 200
    assert links_from(spec, PageRef(0, min(errors))) == []
    found = reachable(spec)
    expanded = [ref for ref in found if ref.page is None or ref.page not in errors]
    linked = {PageRef(0, None)} | {t for ref in expanded for t in links_from(spec, ref)}
    assert found == linked
    assert SiteSpec(error_rate=1.0).error_rate == 1.0
    assert all(is_error_page(SiteSpec(pages=10, error_rate=1.0), 0, n) for n in range(10))


def test_expected_pages_spells_urls() -> None:
    spec = SiteSpec(hosts=2, pages=5, links_per_page=1)
    bases = ["http://127.0.0.2:9", "http://127.0.0.3:9"]
    assert expected_pages(spec, bases, host=1) == {
        "http://127.0.0.3:9/",
        *(f"http://127.0.0.3:9/page/{n}" for n in range(5)),
    }
    with pytest.raises(ValueError, match="base URL"):
        expected_pages(spec, bases[:1])


def test_href_forms_are_mixed() -> None:
    spec = SiteSpec(hosts=2, pages=50, cross_host_links=0.3)
    bases = ["http://a:1", "http://b:1"]
    hrefs = [
        href_for(spec, bases, PageRef(0, n), slot, target)
        for n in range(50)
        for slot, target in enumerate(page_links(spec, 0, n))
    ]
    assert any(h.startswith("http://a:1/page/") for h in hrefs)
    assert any(h.startswith("http://b:1/page/") for h in hrefs)
    assert any(h.startswith("/page/") for h in hrefs)
    assert any(h.isdigit() for h in hrefs)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hosts", 0, "hosts must be ≥ 1"),
        ("pages", 0, "pages must be ≥ 1"),
        ("links_per_page", 0, "links_per_page"),
        ("cross_host_links", 1.5, "cross_host_links must be a fraction"),
        ("error_rate", -0.1, "error_rate must be a fraction"),
        ("latency_ms", -1, "latency_ms"),
        ("page_bytes", -1, "page_bytes"),
        ("first_address", 0, "first_address"),
        ("hosts", 300, "last usable address"),
        ("pages", 2.5, "pages must be an integer"),
    ],
)
def test_spec_validation(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SiteSpec(**{field: value})  # type: ignore[arg-type]


def test_spec_addresses() -> None:
    assert SiteSpec(hosts=3, first_address=10).addresses == [
        "127.0.0.10",
        "127.0.0.11",
        "127.0.0.12",
    ]
