"""The Store contract: what every backend must do, tested against each of them.

Nothing here knows which backend it runs on. Times are explicit (``T0`` + s);
a lease held until ``t`` is expired only when ``now > t``.

Ownership rules pinned here (beyond the Protocol docstrings):

- a *result* is accepted for any open row, whoever holds it; the first result
  wins and the row is finished, later results for it are ignored;
- a *retry* or a *release* only applies to a row still leased by that owner;
  once its lease expired and another worker took the row, it is ignored;
- only a new request takes a host sequence number or counts towards a limit,
  and the round-robin is observed through lease order alone.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.core.errors import ConfigError
from shoal.core.model import (
    Completion,
    FetchResult,
    JobCounts,
    JobInfo,
    NewRequest,
    Request,
    RetryUpdate,
)
from shoal.core.ports import Store

from .storekit import T0, all_results, lease_all, new_request, new_requests, ok

# -- admission ----------------------------------------------------------------


async def test_add_requests_ignores_duplicates_by_fingerprint(store: Store, job: JobInfo) -> None:
    assert await store.add_requests(job.id, new_requests(5), now=T0) == 5
    assert await store.add_requests(job.id, new_requests(5, start=3), now=T0) == 3
    twice = [new_request("x"), new_request("x")]
    assert await store.add_requests(job.id, twice, now=T0) == 1
    assert await store.add_requests(job.id, [], now=T0) == 0
    assert await store.counts(job.id) == JobCounts(pending=9)


async def test_a_fingerprint_is_per_job(store: Store, job: JobInfo) -> None:
    other = await store.ensure_job("other", mode="crawl", config={})
    assert await store.add_requests(job.id, new_requests(3), now=T0) == 3
    assert await store.add_requests(other.id, new_requests(3), now=T0) == 3


async def test_duplicate_of_a_finished_row_is_not_admitted_again(
    store: Store, job: JobInfo
) -> None:
    await store.add_requests(job.id, new_requests(1), now=T0)
    (request,) = await lease_all(store, job.id)
    await store.complete(job.id, "w1", Completion(results=[ok(request)]), now=T0)
    assert await store.add_requests(job.id, new_requests(1), now=T0 + 1) == 0
    assert await store.counts(job.id) == JobCounts(done=1)


def _order(requests: list[Request]) -> list[str]:
    """``a3`` for https://a.test/3: the first letter of the host and the key."""
    return [r.host[0] + r.url.rsplit("/", 1)[1] for r in requests]


async def test_a_duplicate_never_shifts_the_round_robin(store: Store, job: JobInfo) -> None:
    """Only new requests take their host's next sequence number: repeats within a batch
    and requests already admitted take none."""
    a = [new_request(i, host="a.test") for i in range(3)]
    b = [new_request(i, host="b.test") for i in range(4)]
    assert await store.add_requests(job.id, [a[0], a[0], a[0], *b], now=T0) == 5
    assert await store.add_requests(job.id, [a[0], a[1], a[1], b[2]], now=T0) == 1
    lost = Completion(discovered=[a[1], a[0], a[1]])
    assert await store.complete(job.id, "w1", lost, now=T0) == 0
    assert await store.add_requests(job.id, [a[2], a[2]], now=T0) == 1
    # a.test holds sequence numbers 0, 1, 2 and b.test 0..3, whatever the repeats.
    assert _order(await lease_all(store, job.id)) == ["a0", "b0", "b1", "a1", "b2", "a2", "b3"]


async def test_the_first_of_repeated_requests_is_the_one_admitted(
    store: Store, job: JobInfo
) -> None:
    first = new_request("x", depth=1, parent_url="https://a.test/first")
    later = new_request("x", depth=0, parent_url="https://a.test/later")
    assert await store.add_requests(job.id, [first, later], now=T0) == 1
    (leased,) = await lease_all(store, job.id)
    assert (leased.depth, leased.parent_url) == (1, "https://a.test/first")


async def test_max_pages_per_host_across_batches(store: Store, job: JobInfo) -> None:
    await store.set_limits(job.id, max_pages=None, max_pages_per_host=3)
    a = [new_request(i, host="a.test") for i in range(6)]
    b = [new_request(i, host="b.test") for i in range(4)]
    c = [new_request(i, host="c.test", depth=1) for i in range(5)]
    assert await store.add_requests(job.id, [a[0], a[1], b[0], a[2], a[3], a[4]], now=T0) == 4
    assert await store.counters(job.id) == {"host_page_limit": 2}
    # Duplicates are not rejections; a3 is turned away again, and counted again.
    assert await store.add_requests(job.id, [a[0], a[3], b[1], b[1], b[2], b[3]], now=T0) == 2
    assert await store.counters(job.id) == {"host_page_limit": 4}
    found = Completion(discovered=[*c, a[5], b[0]])
    assert await store.complete(job.id, "w1", found, now=T0) == 3
    assert await store.counters(job.id) == {"host_page_limit": 7}
    leased = await lease_all(store, job.id)
    assert _order(leased) == ["a0", "b0", "a1", "b1", "a2", "b2", "c0", "c1", "c2"]
    # A request a limit kept out was not admitted: raising the limit lets it in.
    await store.set_limits(job.id, max_pages=None, max_pages_per_host=4)
    assert await store.add_requests(job.id, [a[3], a[4], b[3]], now=T0) == 2
    assert await store.counters(job.id) == {"host_page_limit": 8}
    assert await store.counts(job.id) == JobCounts(pending=2, leased=9)


async def test_max_pages_across_batches(store: Store, job: JobInfo) -> None:
    await store.set_limits(job.id, max_pages=5, max_pages_per_host=None)
    assert await store.add_requests(job.id, new_requests(3), now=T0) == 3
    batch = [new_request(0), *new_requests(4, start=3)]  # 0 is a duplicate: 3, 4 fit
    assert await store.add_requests(job.id, batch, now=T0) == 2
    assert await store.counters(job.id) == {"max_pages": 2}
    leased = await lease_all(store, job.id)
    found = Completion(
        results=[ok(leased[0])], discovered=[new_request(i, depth=1) for i in range(3, 9)]
    )
    assert await store.complete(job.id, "w1", found, now=T0) == 0
    assert await store.counters(job.id) == {"max_pages": 6}
    assert await store.counts(job.id) == JobCounts(leased=4, done=1)
    # Lowering a limit below what was admitted removes nothing; raising it admits more.
    await store.set_limits(job.id, max_pages=2, max_pages_per_host=None)
    assert await store.add_requests(job.id, new_requests(1, start=20), now=T0) == 0
    assert await store.counts(job.id) == JobCounts(leased=4, done=1)
    await store.set_limits(job.id, max_pages=7, max_pages_per_host=None)
    assert await store.add_requests(job.id, new_requests(5, start=20), now=T0) == 2
    assert await store.counters(job.id) == {"max_pages": 10}
    await store.set_limits(job.id, max_pages=None, max_pages_per_host=None)
    assert await store.add_requests(job.id, new_requests(5, start=20), now=T0) == 3


async def test_both_limits_apply_in_batch_order(store: Store, job: JobInfo) -> None:
    await store.set_limits(job.id, max_pages=4, max_pages_per_host=2)
    batch = [
        new_request(0, host="a.test"),
        new_request(1, host="a.test"),
        new_request(2, host="a.test"),  # a.test is full
        new_request(0, host="b.test"),
        new_request(1, host="b.test"),  # the job is full from here
        new_request(0, host="c.test"),
        new_request(2, host="b.test"),  # over both: counted once, as max_pages
    ]
    assert await store.add_requests(job.id, batch, now=T0) == 4
    assert await store.counters(job.id) == {"host_page_limit": 1, "max_pages": 2}


async def test_limits_are_per_job_and_zero_admits_nothing(store: Store, job: JobInfo) -> None:
    other = await store.ensure_job("other", mode="crawl", config={})
    await store.set_limits(job.id, max_pages=0, max_pages_per_host=None)
    assert await store.add_requests(job.id, new_requests(3), now=T0) == 0
    assert await store.add_requests(other.id, new_requests(3), now=T0) == 3
    assert await store.counters(job.id) == {"max_pages": 3}
    assert await store.counters(other.id) == {}
    await store.set_limits(other.id, max_pages=None, max_pages_per_host=0)
    assert await store.add_requests(other.id, new_requests(2, start=3), now=T0) == 0
    assert await store.counters(other.id) == {"host_page_limit": 2}


async def test_a_negative_limit_is_a_config_error(store: Store, job: JobInfo) -> None:
    with pytest.raises(ConfigError, match="max_pages_per_host"):
        await store.set_limits(job.id, max_pages=None, max_pages_per_host=-1)
    with pytest.raises(ConfigError, match="max_pages"):
        await store.set_limits(job.id, max_pages=-5, max_pages_per_host=None)
    assert await store.add_requests(job.id, new_requests(2), now=T0) == 2


async def test_counters_from_the_engine_and_from_admission_add_up(
    store: Store, job: JobInfo
) -> None:
    other = await store.ensure_job("other", mode="crawl", config={})
    assert await store.counters(job.id) == {}
    await store.add_requests(job.id, new_requests(1), now=T0)
    (request,) = await lease_all(store, job.id)
    batch = Completion(results=[ok(request)], counters={"out_of_scope": 12, "url_too_long": 3})
    await store.complete(job.id, "w1", batch, now=T0)
    # A batch of counters alone is still written; a zero adds nothing.
    only = Completion(counters={"out_of_scope": 1, "robots_disallowed": 2, "never": 0})
    assert await store.complete(job.id, "w1", only, now=T0) == 0
    await store.set_limits(job.id, max_pages=2, max_pages_per_host=None)
    found = Completion(discovered=new_requests(3, start=1), counters={"url_too_long": 1})
    assert await store.complete(job.id, "w1", found, now=T0) == 1
    expected = {"max_pages": 2, "out_of_scope": 13, "robots_disallowed": 2, "url_too_long": 4}
    assert await store.counters(job.id) == expected
    assert await store.counters(other.id) == {}
    summary = await store.summary(job.id)
    assert summary.rejected == expected
    assert list(summary.rejected) == sorted(expected)
    assert (await store.summary(other.id)).rejected == {}


# -- the job's session ---------------------------------------------------------


async def test_a_jobs_cookie_jar_is_kept_per_job_replaced_and_deleted_with_it(
    store: Store, job: JobInfo
) -> None:
    other = await store.ensure_job("other", mode="crawl", config={})
    assert await store.get_cookies(job.id) is None
    await store.put_cookies(job.id, '[{"name": "s", "value": "é ✓"}]')
    await store.put_cookies(other.id, "[]")
    assert await store.get_cookies(job.id) == '[{"name": "s", "value": "é ✓"}]'
    await store.put_cookies(job.id, '[{"name": "s", "value": "2"}]')
    assert await store.get_cookies(job.id) == '[{"name": "s", "value": "2"}]'
    assert await store.delete_job(job.id)
    assert await store.get_cookies(job.id) is None
    assert await store.get_cookies(other.id) == "[]"


# -- per-host state -------------------------------------------------------------


async def test_robots_are_kept_per_job_and_host_until_they_expire(
    store: Store, job: JobInfo
) -> None:
    other = await store.ensure_job("other", mode="crawl", config={})
    assert await store.get_robots(job.id, "a.test", now=T0) is None
    data = '{"rules": [["disallow", "/private"]], "crawl_delay": 2.5, "note": "é ✓"}'
    await store.put_robots(job.id, "a.test", data, expires=T0 + 100)
    assert await store.get_robots(job.id, "a.test", now=T0) == data
    assert await store.get_robots(job.id, "a.test", now=T0 + 99.5) == data
    assert await store.get_robots(job.id, "a.test", now=T0 + 100) is None
    assert await store.get_robots(job.id, "b.test", now=T0) is None
    assert await store.get_robots(other.id, "a.test", now=T0) is None
    # Storing again replaces both the data and its expiry, even with an earlier one.
    await store.put_robots(job.id, "a.test", "{}", expires=T0 + 300)
    assert await store.get_robots(job.id, "a.test", now=T0 + 200) == "{}"
    await store.put_robots(job.id, "a.test", '{"v": 3}', expires=T0 + 50)
    assert await store.get_robots(job.id, "a.test", now=T0 + 60) is None
    assert await store.get_robots(job.id, "a.test", now=T0 + 10) == '{"v": 3}'
    await store.put_robots(other.id, "a.test", "[]", expires=T0 + 10)
    assert await store.get_robots(other.id, "a.test", now=T0) == "[]"
    assert await store.get_robots(job.id, "a.test", now=T0) == '{"v": 3}'


async def test_robots_and_admission_share_hosts_without_disturbing_each_other(
    store: Store, job: JobInfo
) -> None:
    # Robots first for a host never admitted: its sequence still starts at 0.
    await store.put_robots(job.id, "a.test", "A", expires=T0 + 100)
    a = [new_request(i, host="a.test") for i in range(3)]
    b = [new_request(i, host="b.test") for i in range(3)]
    await store.add_requests(job.id, [*b[:2], *a[:2]], now=T0)
    # Robots for a host already admitting: its sequence is not reset.
    await store.put_robots(job.id, "b.test", "B", expires=T0 + 100)
    await store.put_robots(job.id, "a.test", "A2", expires=T0 + 100)
    await store.add_requests(job.id, [a[2], b[2]], now=T0)
    assert _order(await lease_all(store, job.id)) == ["b0", "a0", "b1", "a1", "a2", "b2"]
    assert await store.get_robots(job.id, "a.test", now=T0) == "A2"
    assert await store.get_robots(job.id, "b.test", now=T0) == "B"
    # And a host's limit counts its admissions, not its robots.
    await store.set_limits(job.id, max_pages=None, max_pages_per_host=4)
    await store.put_robots(job.id, "c.test", "C", expires=T0 + 100)
    more = [new_request(i, host=h) for h in ("a.test", "c.test") for i in range(10, 13)]
    assert await store.add_requests(job.id, more, now=T0) == 4
    assert await store.get_robots(job.id, "c.test", now=T0) == "C"


# -- leasing ------------------------------------------------------------------


async def test_lease_takes_shallowest_first_then_admission_order(
    store: Store, job: JobInfo
) -> None:
    depths = [2, 0, 1, 0, 2, 1]
    await store.add_requests(
        job.id, [new_request(f"u{i}", depth=d) for i, d in enumerate(depths)], now=T0
    )
    first = await store.lease(job.id, "w1", limit=4, now=T0, ttl=60)
    assert [r.url.rsplit("/", 1)[1] for r in first] == ["u1", "u3", "u2", "u5"]
    assert [r.depth for r in first] == [0, 0, 1, 1]
    rest = await store.lease(job.id, "w1", limit=10, now=T0, ttl=60)
    assert [r.url.rsplit("/", 1)[1] for r in rest] == ["u0", "u4"]
    assert await store.lease(job.id, "w1", limit=10, now=T0, ttl=60) == []
    assert await store.counts(job.id) == JobCounts(leased=6)


async def test_lease_interleaves_hosts_within_a_depth(store: Store, job: JobInfo) -> None:
    """A list sorted by host is leased round-robin: the n-th URL of every host first."""
    sorted_by_host = [
        new_request(i, host=h) for h in ("a.test", "b.test", "c.test") for i in range(4)
    ]
    await store.add_requests(job.id, sorted_by_host, now=T0)
    first = await store.lease(job.id, "w1", limit=6, now=T0, ttl=60)
    assert [r.host for r in first] == ["a.test", "b.test", "c.test"] * 2
    # Later admissions continue each host's sequence rather than jumping the queue.
    await store.add_requests(job.id, [new_request(9, host="d.test")], now=T0)
    await store.add_requests(job.id, [new_request(8, host="a.test")], now=T0)
    rest = await store.lease(job.id, "w1", limit=10, now=T0, ttl=60)
    assert [r.host for r in rest[:4]] == ["d.test", "a.test", "b.test", "c.test"]
    assert rest[-1].url == "https://a.test/8"
    # Discovered links are sequenced the same way.
    await store.complete(
        job.id,
        "w1",
        Completion(
            discovered=[new_request(f"x{i}", host="e.test", depth=1) for i in range(3)]
            + [new_request("y", host="f.test", depth=1)]
        ),
        now=T0,
    )
    deeper = await store.lease(job.id, "w1", limit=2, now=T0, ttl=60)
    assert [r.host for r in deeper] == ["e.test", "f.test"]


async def test_lease_max_depth_and_min_open_depth(store: Store, job: JobInfo) -> None:
    assert await store.min_open_depth(job.id) is None
    depths = (2, 1, 3, 1)
    await store.add_requests(
        job.id, [new_request(f"r{i}", depth=d) for i, d in enumerate(depths)], now=T0
    )
    assert await store.min_open_depth(job.id) == 1
    shallow = await store.lease(job.id, "w1", limit=10, now=T0, ttl=60, max_depth=1)
    assert [r.depth for r in shallow] == [1, 1]
    assert await store.min_open_depth(job.id) == 1  # leased rows are still open
    await store.complete(job.id, "w1", Completion(results=[ok(r) for r in shallow]), now=T0)
    assert await store.min_open_depth(job.id) == 2
    rest = await store.lease(job.id, "w1", limit=10, now=T0, ttl=60, max_depth=2)
    assert [r.depth for r in rest] == [2]


async def test_lease_limit(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(5), now=T0)
    assert await store.lease(job.id, "w1", limit=0, now=T0, ttl=60) == []
    assert len(await store.lease(job.id, "w1", limit=2, now=T0, ttl=60)) == 2
    assert len(await store.lease(job.id, "w1", limit=2, now=T0, ttl=60)) == 2
    assert len(await store.lease(job.id, "w1", limit=2, now=T0, ttl=60)) == 1


async def test_lease_returns_the_request_as_admitted(store: Store, job: JobInfo) -> None:
    admitted = new_request(
        "form",
        depth=3,
        method="POST",
        headers=(("content-type", "application/json"), ("x-trace", "é ✓")),
        body=b'{"q": 1}\x00\xff',
        parent_url="https://a.test/",
    )
    await store.add_requests(job.id, [admitted, new_request("plain")], now=T0)
    by_url = {r.url: r for r in await lease_all(store, job.id)}
    form = by_url[admitted.url]
    assert (form.url, form.host, form.method, form.depth) == (admitted.url, "a.test", "POST", 3)
    assert form.headers == admitted.headers
    assert form.body == admitted.body
    assert form.parent_url == "https://a.test/"
    assert form.attempts == 0
    plain = by_url["https://a.test/plain"]
    assert (plain.method, plain.headers, plain.body, plain.parent_url) == ("GET", (), None, None)
    assert form.id != plain.id


async def test_rows_are_due_from_their_admission_time(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(2), now=T0 + 100)
    assert await store.lease(job.id, "w1", limit=10, now=T0 + 99, ttl=60) == []
    assert await store.next_due(job.id) == T0 + 100
    assert len(await store.lease(job.id, "w1", limit=10, now=T0 + 100, ttl=60)) == 2


async def test_a_lease_is_exclusive_until_it_expires(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(3), now=T0)
    held = await store.lease(job.id, "a", limit=10, now=T0, ttl=30)
    assert len(held) == 3
    assert await store.lease(job.id, "b", limit=10, now=T0 + 10, ttl=30) == []
    assert await store.lease(job.id, "b", limit=10, now=T0 + 30, ttl=30) == []
    taken = await store.lease(job.id, "b", limit=10, now=T0 + 30.5, ttl=30)
    assert [r.id for r in taken] == [r.id for r in held]
    assert await store.counts(job.id) == JobCounts(leased=3)


async def test_expired_leases_merge_into_lease_order(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, [new_request("deep", depth=1)], now=T0)
    await store.lease(job.id, "dead", limit=10, now=T0, ttl=10)
    await store.add_requests(
        job.id, [new_request("shallow"), new_request("deeper", depth=2)], now=T0
    )
    leased = await store.lease(job.id, "b", limit=2, now=T0 + 20, ttl=10)
    assert [r.url.rsplit("/", 1)[1] for r in leased] == ["shallow", "deep"]


async def test_renew_leases_extends_only_the_owners_leases(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(2), now=T0)
    await store.add_requests(job.id, new_requests(1, host="b.test", depth=1), now=T0)
    await store.lease(job.id, "a", limit=2, now=T0, ttl=30)
    await store.lease(job.id, "b", limit=1, now=T0, ttl=30)
    assert await store.renew_leases(job.id, "a", now=T0 + 20, ttl=30) == 2
    assert await store.renew_leases(job.id, "nobody", now=T0 + 20, ttl=30) == 0
    # b's lease ran out at T0+30; a's now runs until T0+50.
    assert len(await store.lease(job.id, "c", limit=10, now=T0 + 40, ttl=30)) == 1
    assert await store.lease(job.id, "c", limit=10, now=T0 + 49, ttl=30) == []
    assert len(await store.lease(job.id, "c", limit=10, now=T0 + 51, ttl=30)) == 2


# -- host ownership: politeness across workers -----------------------------------


async def test_a_host_is_leased_by_one_owner_at_a_time(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(4), now=T0)
    await store.add_requests(job.id, new_requests(2, host="b.test"), now=T0)
    first = await store.lease(job.id, "a", limit=1, now=T0, ttl=30)
    assert [r.host for r in first] == ["a.test"]
    # b.test is free; a.test is a's until its ownership expires, even for rows a never held.
    taken = await store.lease(job.id, "b", limit=10, now=T0 + 1, ttl=30)
    assert {r.host for r in taken} == {"b.test"}
    more = await store.lease(job.id, "a", limit=10, now=T0 + 2, ttl=30)
    assert len(more) == 3 and {r.host for r in more} == {"a.test"}
    await store.complete(job.id, "a", Completion(results=[ok(r) for r in first + more]), now=T0 + 3)
    await store.complete(job.id, "b", Completion(results=[ok(r) for r in taken]), now=T0 + 3)
    await store.add_requests(job.id, new_requests(1, start=10), now=T0 + 3)
    # a's last lease (T0+2) renewed its ownership until T0+32.
    assert await store.lease(job.id, "c", limit=10, now=T0 + 32, ttl=30) == []
    (late,) = await store.lease(job.id, "c", limit=10, now=T0 + 32.5, ttl=30)
    assert late.host == "a.test"


async def test_renewal_keeps_hosts_owned(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(2), now=T0)
    held = await store.lease(job.id, "a", limit=1, now=T0, ttl=30)
    await store.complete(job.id, "a", Completion(results=[ok(r) for r in held]), now=T0 + 1)
    await store.renew_leases(job.id, "a", now=T0 + 20, ttl=30)
    assert await store.lease(job.id, "b", limit=10, now=T0 + 40, ttl=30) == []
    assert len(await store.lease(job.id, "b", limit=10, now=T0 + 51, ttl=30)) == 1


async def test_a_released_host_waits_for_its_gap(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(2), now=T0)
    held = await store.lease(job.id, "a", limit=1, now=T0, ttl=30, gap=10)
    await store.complete(job.id, "a", Completion(results=[ok(r) for r in held]), now=T0 + 1)
    assert await store.release_leases(job.id, "a", now=T0 + 2) == 0
    assert await store.lease(job.id, "b", limit=10, now=T0 + 11.9, ttl=30) == []
    assert len(await store.lease(job.id, "b", limit=10, now=T0 + 12, ttl=30)) == 1


async def test_hosts_are_handed_over_after_a_quantum_when_others_work(
    store: Store, job: JobInfo
) -> None:
    for owner in ("a", "b"):
        await store.register_worker(job.id, owner, pid=1, hostname="h", now=T0)
    await store.add_requests(job.id, new_requests(4), now=T0)
    (first,) = await store.lease(job.id, "a", limit=1, now=T0, ttl=60, gap=2, quantum=5)
    (second,) = await store.lease(job.id, "a", limit=1, now=T0 + 1, ttl=60, gap=2, quantum=5)
    await store.complete(job.id, "a", Completion(results=[ok(first)]), now=T0 + 2)
    # Past the quantum a takes no more rows of the host, and holds it while one is in flight.
    assert await store.lease(job.id, "a", limit=1, now=T0 + 5, ttl=60, gap=2, quantum=5) == []
    assert await store.lease(job.id, "b", limit=1, now=T0 + 5, ttl=60, gap=2, quantum=5) == []
    await store.complete(job.id, "a", Completion(results=[ok(second)]), now=T0 + 6)
    for owner in ("a", "b"):
        await store.heartbeat(job.id, owner, now=T0 + 6)
    # a's next lease hands the host over (next start: now + gap); a may not take it back at once.
    assert await store.lease(job.id, "a", limit=1, now=T0 + 7, ttl=60, gap=2, quantum=5) == []
    assert await store.lease(job.id, "b", limit=1, now=T0 + 8.9, ttl=60, gap=2, quantum=5) == []
    (third,) = await store.lease(job.id, "b", limit=1, now=T0 + 9, ttl=60, gap=2, quantum=5)
    assert third.host == "a.test"


async def test_a_handed_over_host_waits_its_gap_after_the_owners_last_completion(
    store: Store, job: JobInfo
) -> None:
    """A lease's ``now`` is read before its transaction runs, and the owner's last batch
    may land in between (another connection of a pool, or a lease retried after losing a
    deadlock): its last request went after that ``now``, before the batch's ``now``."""
    for owner in ("a", "b"):
        await store.register_worker(job.id, owner, pid=1, hostname="h", now=T0)
    await store.add_requests(job.id, new_requests(3), now=T0)
    (first,) = await store.lease(job.id, "a", limit=1, now=T0, ttl=60, gap=2, quantum=5)
    await store.complete(job.id, "a", Completion(results=[ok(first)]), now=T0 + 1)
    (last,) = await store.lease(job.id, "a", limit=1, now=T0 + 2, ttl=60, gap=2, quantum=5)
    for owner in ("a", "b"):
        await store.heartbeat(job.id, owner, now=T0 + 6)
    # a's last request goes at T0+6.9 and is written at T0+7; a lease a asked for at
    # T0+6.5 runs after that write and hands the host over.
    await store.complete(job.id, "a", Completion(results=[ok(last)]), now=T0 + 7)
    assert await store.lease(job.id, "a", limit=1, now=T0 + 6.5, ttl=60, gap=2, quantum=5) == []
    # Not 2 s after the lease's T0+6.5 (T0+6.9 is too close to a's last request) but 2 s
    # after the completion.
    assert await store.lease(job.id, "b", limit=1, now=T0 + 8.9, ttl=60, gap=2, quantum=5) == []
    (third,) = await store.lease(job.id, "b", limit=1, now=T0 + 9, ttl=60, gap=2, quantum=5)
    assert third.host == "a.test"


async def test_a_released_host_waits_its_gap_after_the_owners_last_completion(
    store: Store, job: JobInfo
) -> None:
    """Releasing a worker's hosts follows the hand-over's rule: the owner's last request
    went before its last batch was written, whatever the release's ``now``."""
    await store.add_requests(job.id, new_requests(3), now=T0)
    await store.register_worker(job.id, "a", pid=1, hostname="h", now=T0)
    held = await store.lease(job.id, "a", limit=2, now=T0, ttl=30, gap=2)
    retry = RetryUpdate(
        request_id=held[1].id, attempts=1, next_at=T0, error_kind="timeout", error=""
    )
    batch = Completion(results=[ok(held[0])], retries=[retry])
    await store.complete(job.id, "a", batch, now=T0 + 5)
    assert await store.release_leases(job.id, "a", now=T0 + 4) == 0
    assert await store.lease(job.id, "b", limit=10, now=T0 + 6.9, ttl=30) == []
    assert len(await store.lease(job.id, "b", limit=10, now=T0 + 7, ttl=30)) == 2


async def test_a_lone_worker_keeps_its_hosts(store: Store, job: JobInfo) -> None:
    await store.register_worker(job.id, "a", pid=1, hostname="h", now=T0)
    await store.add_requests(job.id, new_requests(3), now=T0)
    for second in range(3):
        now = T0 + 10 * second
        (request,) = await store.lease(job.id, "a", limit=1, now=now, ttl=60, quantum=5)
        await store.complete(job.id, "a", Completion(results=[ok(request)]), now=now + 1)


# -- completing ---------------------------------------------------------------


async def test_complete_finishes_rows_as_done_or_failed(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(3), now=T0)
    r0, r1, r2 = await lease_all(store, job.id)
    batch = Completion(
        results=[
            ok(r0, status=200),
            ok(r1, status=404),
            ok(r2, status=None, error_kind="dns_error", error="no such host", attempts=3),
        ]
    )
    assert await store.complete(job.id, "w1", batch, now=T0 + 1) == 0
    assert await store.counts(job.id) == JobCounts(done=2, failed=1)
    results = await all_results(store, job.id)
    assert [(r.request_id, r.status, r.error_kind) for r in results] == [
        (r0.id, 200, None),
        (r1.id, 404, None),
        (r2.id, None, "dns_error"),
    ]
    assert results[2].attempts == 3
    assert results[2].error == "no such host"
    assert await store.lease(job.id, "w1", limit=10, now=T0 + 1000, ttl=60) == []
    assert await store.next_due(job.id) is None


async def test_a_row_never_gets_two_results(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(4), now=T0)
    first = await store.lease(job.id, "a", limit=10, now=T0, ttl=10)
    # a stalls, its lease expires, b takes the same rows and finishes first.
    second = await store.lease(job.id, "b", limit=10, now=T0 + 11, ttl=10)
    assert [r.id for r in second] == [r.id for r in first]
    await store.complete(
        job.id, "b", Completion(results=[ok(r, status=200) for r in second]), now=T0 + 12
    )
    assert await store.counts(job.id) == JobCounts(done=4)
    late = Completion(results=[ok(r, status=None, error_kind="timeout") for r in first])
    await store.complete(job.id, "a", late, now=T0 + 13)
    assert await store.counts(job.id) == JobCounts(done=4)
    await store.complete(
        job.id, "b", Completion(results=[ok(r, status=500) for r in second]), now=T0 + 14
    )
    assert await store.counts(job.id) == JobCounts(done=4)
    results = await all_results(store, job.id)
    assert [(r.request_id, r.status) for r in results] == [(r.id, 200) for r in second]


async def test_the_first_result_wins_even_from_a_late_owner(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(1), now=T0)
    (a_copy,) = await store.lease(job.id, "a", limit=10, now=T0, ttl=10)
    (b_copy,) = await store.lease(job.id, "b", limit=10, now=T0 + 11, ttl=10)
    await store.complete(job.id, "a", Completion(results=[ok(a_copy, status=201)]), now=T0 + 12)
    await store.complete(job.id, "b", Completion(results=[ok(b_copy, status=202)]), now=T0 + 13)
    assert [r.status for r in await all_results(store, job.id)] == [201]
    assert await store.counts(job.id) == JobCounts(done=1)


async def test_retry_wait_is_leasable_only_when_due(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(2), now=T0)
    r0, r1 = await lease_all(store, job.id)
    retry = RetryUpdate(
        request_id=r0.id, attempts=1, next_at=T0 + 60, error_kind="timeout", error="read timeout"
    )
    await store.complete(job.id, "w1", Completion(retries=[retry]), now=T0 + 1)
    assert await store.counts(job.id) == JobCounts(leased=1, retry_wait=1)
    assert await store.next_due(job.id) == T0 + 60
    assert await store.lease(job.id, "w1", limit=10, now=T0 + 59, ttl=60) == []
    (again,) = await store.lease(job.id, "w1", limit=10, now=T0 + 60, ttl=60)
    assert (again.id, again.attempts) == (r0.id, 1)
    await store.complete(job.id, "w1", Completion(results=[ok(again)]), now=T0 + 61)
    assert [r.attempts for r in await all_results(store, job.id)] == [2]


async def test_retries_and_releases_from_a_late_owner_are_ignored(
    store: Store, job: JobInfo
) -> None:
    await store.add_requests(job.id, new_requests(2), now=T0)
    r0, r1 = await store.lease(job.id, "a", limit=10, now=T0, ttl=10)
    await store.lease(job.id, "b", limit=10, now=T0 + 11, ttl=10)
    retry = RetryUpdate(request_id=r0.id, attempts=1, next_at=T0, error_kind="timeout", error="")
    await store.complete(job.id, "a", Completion(retries=[retry], released=[r1.id]), now=T0 + 12)
    assert await store.release_leases(job.id, "a", now=T0) == 0
    assert await store.counts(job.id) == JobCounts(leased=2)
    assert await store.lease(job.id, "c", limit=10, now=T0 + 12, ttl=10) == []


async def test_a_retry_from_the_owner_of_an_expired_lease_still_counts(
    store: Store, job: JobInfo
) -> None:
    await store.add_requests(job.id, new_requests(1), now=T0)
    (request,) = await store.lease(job.id, "a", limit=10, now=T0, ttl=10)
    retry = RetryUpdate(
        request_id=request.id, attempts=1, next_at=T0 + 30, error_kind="timeout", error=""
    )
    await store.complete(job.id, "a", Completion(retries=[retry]), now=T0 + 20)
    assert await store.counts(job.id) == JobCounts(retry_wait=1)


async def test_released_rows_go_back_to_pending_or_retry_wait(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(2), now=T0)
    fresh, tried = await lease_all(store, job.id)
    retry = RetryUpdate(
        request_id=tried.id, attempts=1, next_at=T0 + 5, error_kind="timeout", error=""
    )
    await store.complete(job.id, "w1", Completion(retries=[retry]), now=T0)
    (tried,) = await lease_all(store, job.id, now=T0 + 5)
    await store.complete(job.id, "w1", Completion(released=[fresh.id, tried.id]), now=T0 + 6)
    assert await store.counts(job.id) == JobCounts(pending=1, retry_wait=1)
    again = await lease_all(store, job.id, owner="w1", now=T0 + 6)
    assert [(r.id, r.attempts) for r in again] == [(fresh.id, 0), (tried.id, 1)]


async def test_release_leases_returns_only_the_owners_rows(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(3), now=T0)
    await store.add_requests(job.id, new_requests(2, host="b.test", depth=1), now=T0)
    await store.lease(job.id, "a", limit=3, now=T0, ttl=60)
    await store.lease(job.id, "b", limit=2, now=T0, ttl=60)
    assert await store.release_leases(job.id, "a", now=T0) == 3
    assert await store.counts(job.id) == JobCounts(pending=3, leased=2)
    assert await store.release_leases(job.id, "a", now=T0) == 0
    assert len(await store.lease(job.id, "c", limit=10, now=T0, ttl=60)) == 3


def _suspicion(requests: list[Request]) -> list[tuple[int, bool, int]]:
    return [(r.attempts, r.suspect, r.crashes) for r in requests]


async def test_taking_back_a_dead_workers_rows_makes_them_suspects(
    store: Store, job: JobInfo
) -> None:
    """Its whole lease window comes back suspect, without an attempt: most of it was never
    fetched. A graceful release leaves rows as they were."""
    await store.add_requests(job.id, new_requests(2), now=T0)
    await store.add_requests(job.id, new_requests(1, host="b.test", depth=1), now=T0)
    await store.lease(job.id, "dead", limit=2, now=T0, ttl=60)
    await store.lease(job.id, "alive", limit=1, now=T0, ttl=60)
    assert await store.release_leases(job.id, "dead", crashed=True, now=T0) == 2
    assert await store.counts(job.id) == JobCounts(leased=1, pending=2)
    assert await store.next_due(job.id) == T0
    again = await store.lease(job.id, "dead-2", limit=10, now=T0 + 1, ttl=60)
    assert _suspicion(again) == [(0, True, 0), (0, True, 0)]
    assert await store.release_leases(job.id, "dead-2", crashed=True, now=T0) == 2
    assert await store.release_leases(job.id, "alive", now=T0) == 1
    leased = await lease_all(store, job.id, now=T0 + 2)
    assert _suspicion(leased) == [(0, True, 0), (0, True, 0), (0, False, 0)]
    assert await store.release_leases(job.id, "w1", crashed=False, now=T0) == 3
    assert await store.counts(job.id) == JobCounts(pending=3)
    leased = await lease_all(store, job.id, now=T0 + 3)
    assert _suspicion(leased) == [(0, True, 0), (0, True, 0), (0, False, 0)]
    assert await store.release_leases(job.id, "nobody", crashed=True, now=T0) == 0


async def test_a_dead_worker_keeps_the_attempts_and_state_of_retried_rows(
    store: Store, job: JobInfo
) -> None:
    await store.add_requests(job.id, new_requests(1), now=T0)
    (request,) = await lease_all(store, job.id, owner="dead")
    retry = RetryUpdate(request_id=request.id, attempts=2, next_at=T0, error_kind=None, error="")
    await store.complete(job.id, "dead", Completion(retries=[retry]), now=T0)
    await lease_all(store, job.id, owner="dead", now=T0 + 1)
    assert await store.release_leases(job.id, "dead", crashed=True, now=T0 + 1) == 1
    assert await store.counts(job.id) == JobCounts(retry_wait=1)
    assert _suspicion(await lease_all(store, job.id, now=T0 + 2)) == [(2, True, 0)]


async def test_only_rows_marked_started_count_a_crash(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(3), now=T0)
    r0, r1, r2 = await lease_all(store, job.id, owner="dead")
    assert await store.mark_started(job.id, "dead", [r0.id, r2.id], now=T0 + 1) == 2
    await store.release_leases(job.id, "dead", crashed=True, now=T0 + 2)
    again = await lease_all(store, job.id, owner="next", now=T0 + 3)
    assert [r.id for r in again] == [r0.id, r1.id, r2.id]
    assert _suspicion(again) == [(0, True, 1), (0, True, 0), (0, True, 1)]
    # Dying again with only r0 marked: r0 alone is blamed, and crashes add up.
    await store.mark_started(job.id, "next", [r0.id], now=T0 + 4)
    await store.release_leases(job.id, "next", crashed=True, now=T0 + 5)
    again = await lease_all(store, job.id, owner="third", now=T0 + 6)
    assert _suspicion(again) == [(0, True, 2), (0, True, 0), (0, True, 1)]
    await store.complete(job.id, "third", Completion(results=[ok(r) for r in again]), now=T0 + 7)
    assert [r.attempts for r in await all_results(store, job.id)] == [1, 1, 1]


async def test_mark_started_marks_only_live_leases_of_the_owner(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(4), now=T0)
    await store.add_requests(job.id, new_requests(1, host="b.test", depth=1), now=T0)
    r0, r1, r2, r3 = await store.lease(job.id, "a", limit=4, now=T0, ttl=10)
    (other,) = await store.lease(job.id, "b", limit=10, now=T0, ttl=60)
    await store.complete(job.id, "a", Completion(results=[ok(r1)]), now=T0)
    await store.complete(job.id, "a", Completion(released=[r2.id]), now=T0)
    assert await store.mark_started(job.id, "a", [], now=T0) == 0
    ids = [r0.id, r1.id, r2.id, other.id, 10**9]
    assert await store.mark_started(job.id, "a", ids, now=T0 + 1) == 1
    assert await store.mark_started(job.id, "a", [r3.id], now=T0 + 11) == 0  # expired
    # Nothing marked is left of a: only r0 counts a crash.
    await store.release_leases(job.id, "a", crashed=True, now=T0 + 12)
    by_id = {r.id: r for r in await lease_all(store, job.id, owner="c", now=T0 + 13)}
    assert (by_id[r0.id].crashes, by_id[r2.id].crashes, by_id[r3.id].crashes) == (1, 0, 0)
    assert (by_id[r2.id].suspect, by_id[r3.id].suspect) == (False, True)


async def test_a_retry_clears_the_suspicion(store: Store, job: JobInfo) -> None:
    """The process survived the fetch: the row is an ordinary row again (its crashes stay)."""
    await store.add_requests(job.id, new_requests(1), now=T0)
    (request,) = await lease_all(store, job.id, owner="dead")
    await store.mark_started(job.id, "dead", [request.id], now=T0)
    await store.release_leases(job.id, "dead", crashed=True, now=T0)
    (request,) = await lease_all(store, job.id, now=T0 + 1)
    assert _suspicion([request]) == [(0, True, 1)]
    await store.mark_started(job.id, "w1", [request.id], now=T0 + 1)
    retry = RetryUpdate(
        request_id=request.id, attempts=1, next_at=T0 + 2, error_kind=None, error=""
    )
    await store.complete(job.id, "w1", Completion(retries=[retry]), now=T0 + 2)
    (request,) = await lease_all(store, job.id, now=T0 + 3)
    assert _suspicion([request]) == [(1, False, 1)]
    # Not suspect, not marked: a death now makes it a suspect again without a crash.
    await store.release_leases(job.id, "w1", crashed=True, now=T0 + 3)
    assert _suspicion(await lease_all(store, job.id, now=T0 + 4)) == [(1, True, 1)]


async def test_a_graceful_release_takes_the_mark_back(store: Store, job: JobInfo) -> None:
    """A started row released (shutdown) stays a suspect, and a later death that finds it
    unmarked counts no crash."""
    await store.add_requests(job.id, new_requests(2), now=T0)
    await lease_all(store, job.id, owner="dead")
    await store.release_leases(job.id, "dead", crashed=True, now=T0)
    one, two = await lease_all(store, job.id, now=T0 + 1)
    assert await store.mark_started(job.id, "w1", [one.id, two.id], now=T0 + 1) == 2
    await store.complete(job.id, "w1", Completion(released=[one.id]), now=T0 + 2)
    assert await store.release_leases(job.id, "w1", now=T0 + 2) == 1  # two, at shutdown
    assert await store.counts(job.id) == JobCounts(pending=2)
    leased = await lease_all(store, job.id, owner="w2", now=T0 + 3)
    assert _suspicion(leased) == [(0, True, 0), (0, True, 0)]
    await store.release_leases(job.id, "w2", crashed=True, now=T0 + 4)
    assert _suspicion(await lease_all(store, job.id, now=T0 + 5)) == [(0, True, 0), (0, True, 0)]


async def test_taking_over_an_expired_lease_is_like_taking_back_a_dead_workers_rows(
    store: Store, job: JobInfo
) -> None:
    """No attempt is added; the row becomes a suspect, and a row marked started counts a
    crash. Rows leased from pending or retry-wait keep their suspicion as it was."""
    await store.add_requests(job.id, new_requests(3), now=T0)
    first = await store.lease(job.id, "a", limit=2, now=T0, ttl=10)
    assert _suspicion(first) == [(0, False, 0), (0, False, 0)]
    await store.mark_started(job.id, "a", [first[0].id], now=T0 + 1)
    second = await store.lease(job.id, "b", limit=10, now=T0 + 11, ttl=10)
    assert [r.id for r in second] == [first[0].id, first[1].id, second[2].id]
    assert _suspicion(second) == [(0, True, 1), (0, True, 0), (0, False, 0)]
    # A retry sets attempts as given and clears the suspicion; a later expiry counts no
    # crash for a row not marked again.
    retry = RetryUpdate(
        request_id=second[0].id, attempts=3, next_at=T0 + 11, error_kind="timeout", error=None
    )
    await store.complete(job.id, "b", Completion(retries=[retry]), now=T0 + 11)
    await store.mark_started(job.id, "b", [second[1].id], now=T0 + 12)
    third = await store.lease(job.id, "c", limit=10, now=T0 + 22, ttl=10)
    assert _suspicion(third) == [(3, False, 1), (0, True, 1), (0, True, 0)]
    await store.complete(job.id, "c", Completion(results=[ok(r) for r in third]), now=T0 + 23)
    assert [r.attempts for r in await all_results(store, job.id)] == [4, 1, 1]


async def test_discovered_requests_are_admitted_inside_complete(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(2), now=T0)
    r0, r1 = await lease_all(store, job.id)
    discovered = [
        new_request("new-1", depth=1, parent_url=r0.url),
        new_request("new-2", depth=1, parent_url=r0.url),
        new_request("new-2", depth=1, parent_url=r0.url),
        new_request(1),  # already admitted (r1)
    ]
    batch = Completion(results=[ok(r0)], discovered=discovered, released=[r1.id])
    assert await store.complete(job.id, "w1", batch, now=T0 + 5) == 2
    assert await store.counts(job.id) == JobCounts(pending=3, done=1)
    assert await store.next_due(job.id) == T0
    leased = await lease_all(store, job.id, now=T0 + 5)
    assert [(r.url.rsplit("/", 1)[1], r.depth, r.parent_url) for r in leased] == [
        ("1", 0, None),
        ("new-1", 1, r0.url),
        ("new-2", 1, r0.url),
    ]


async def test_empty_completion(store: Store, job: JobInfo) -> None:
    assert await store.complete(job.id, "w1", Completion(), now=T0) == 0


# -- next_due and counts ------------------------------------------------------


async def test_next_due_is_the_earliest_waiting_row(store: Store, job: JobInfo) -> None:
    assert await store.next_due(job.id) is None
    await store.add_requests(job.id, new_requests(2), now=T0 + 7)
    await store.add_requests(job.id, new_requests(2, start=2), now=T0 + 3)
    assert await store.next_due(job.id) == T0 + 3
    leased = await lease_all(store, job.id, now=T0 + 10)
    assert await store.next_due(job.id) is None  # leased rows are not waiting
    retry = RetryUpdate(
        request_id=leased[0].id, attempts=1, next_at=T0 + 40, error_kind=None, error=None
    )
    await store.complete(
        job.id, "w1", Completion(retries=[retry], results=[ok(leased[1])]), now=T0 + 11
    )
    assert await store.next_due(job.id) == T0 + 40


async def test_counts_follow_every_transition(store: Store, job: JobInfo) -> None:
    assert await store.counts(job.id) == JobCounts()
    await store.add_requests(job.id, new_requests(6), now=T0)
    r = await store.lease(job.id, "w1", limit=5, now=T0, ttl=60)
    assert await store.counts(job.id) == JobCounts(pending=1, leased=5)
    retry = RetryUpdate(request_id=r[2].id, attempts=1, next_at=T0 + 9, error_kind=None, error=None)
    batch = Completion(
        results=[ok(r[0]), ok(r[1], status=None)], retries=[retry], released=[r[3].id]
    )
    await store.complete(job.id, "w1", batch, now=T0)
    counts = await store.counts(job.id)
    assert counts == JobCounts(pending=2, leased=1, retry_wait=1, done=1, failed=1)
    assert (counts.total, counts.open, counts.finished) == (6, 4, 2)


# -- workers ------------------------------------------------------------------


async def test_desired_state_is_kept_per_job(store: Store, job: JobInfo) -> None:
    other = await store.ensure_job("other", mode="crawl", config={})
    assert job.desired is None
    await store.set_desired(job.id, "paused")
    await store.set_desired(other.id, "running")
    again = await store.get_job(job.name)
    assert again is not None and again.desired == "paused"
    await store.set_desired(job.id, None)
    assert {j.name: j.desired for j in await store.list_jobs()} == {
        job.name: None,
        "other": "running",
    }


async def test_worker_registry(store: Store, job: JobInfo) -> None:
    other = await store.ensure_job("other", mode="crawl", config={})
    await store.register_worker(job.id, "a", pid=11, hostname="h1", now=T0)
    await store.register_worker(job.id, "b", pid=12, hostname="h2", now=T0 + 1)
    await store.heartbeat(job.id, "a", now=T0 + 5)
    workers = await store.list_workers(job.id)
    assert [(w.owner, w.pid, w.hostname, w.started_at, w.heartbeat_at) for w in workers] == [
        ("a", 11, "h1", T0, T0 + 5),
        ("b", 12, "h2", T0 + 1, T0 + 1),
    ]
    await store.register_worker(job.id, "a", pid=21, hostname="h1", now=T0 + 9)
    await store.unregister_worker(job.id, "b")
    workers = await store.list_workers(job.id)
    assert [(w.owner, w.pid, w.started_at) for w in workers] == [("a", 21, T0 + 9)]
    assert await store.list_workers(other.id) == []
    await store.heartbeat(job.id, "ghost", now=T0)
    await store.unregister_worker(job.id, "ghost")
    assert [w.owner for w in await store.list_workers(job.id)] == ["a"]


# -- results ------------------------------------------------------------------


async def test_iter_results_in_request_order_in_batches(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(7), now=T0)
    leased = await lease_all(store, job.id)
    backwards = [ok(r) for r in reversed(leased)]
    await store.complete(job.id, "w1", Completion(results=backwards[:3]), now=T0)
    await store.complete(job.id, "w1", Completion(results=backwards[3:]), now=T0)
    batches = [b async for b in store.iter_results(job.id, batch_size=3)]
    assert [len(b) for b in batches] == [3, 3, 1]
    assert [r.request_id for b in batches for r in b] == sorted(r.id for r in leased)
    exact = [b async for b in store.iter_results(job.id, batch_size=7)]
    assert [len(b) for b in exact] == [7]
    empty = await store.ensure_job("empty", mode="fetch", config={})
    assert [b async for b in store.iter_results(empty.id)] == []


async def test_iter_results_after_is_a_keyset_page(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(5), now=T0)
    leased = await lease_all(store, job.id)
    await store.complete(job.id, "w1", Completion(results=[ok(r) for r in leased]), now=T0)
    ids = sorted(r.id for r in leased)
    pages = store.iter_results(job.id, batch_size=2)
    assert [r.request_id for r in await anext(pages)] == ids[:2]
    await pages.aclose()  # type: ignore[attr-defined]
    rest = [b async for b in store.iter_results(job.id, batch_size=2, after=ids[1])]
    assert [r.request_id for b in rest for r in b] == ids[2:]
    assert [b async for b in store.iter_results(job.id, after=ids[-1])] == []


async def test_iter_results_reads_one_snapshot(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(10), now=T0)
    leased = await lease_all(store, job.id)
    await store.complete(job.id, "w1", Completion(results=[ok(r) for r in leased[:5]]), now=T0)
    seen: list[int] = []
    results = store.iter_results(job.id, batch_size=2)
    seen.extend(r.request_id for r in await anext(results))
    await store.complete(job.id, "w1", Completion(results=[ok(r) for r in leased[5:]]), now=T0)
    async for batch in results:
        seen.extend(r.request_id for r in batch)
    assert seen == [r.id for r in leased[:5]]
    assert len(await all_results(store, job.id)) == 10


async def test_iter_results_can_stop_early(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(4), now=T0)
    leased = await lease_all(store, job.id)
    await store.complete(job.id, "w1", Completion(results=[ok(r) for r in leased]), now=T0)
    results = store.iter_results(job.id, batch_size=1)
    assert len(await anext(results)) == 1
    await results.aclose()  # type: ignore[attr-defined]
    assert await store.add_requests(job.id, new_requests(1, start=9), now=T0) == 1
    assert len(await all_results(store, job.id)) == 4


async def test_results_round_trip_every_field(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(4), now=T0)
    r0, r1, r2, r3 = await lease_all(store, job.id)
    body = b"<html>" + bytes(range(256)) * 40 + b"</html>"
    full = FetchResult(
        request_id=r0.id,
        url=r0.url,
        final_url="https://a.test/final",
        redirects=("https://a.test/0", "https://a.test/mid"),
        status=200,
        error_kind="too_large",
        error="body over 1 MiB",
        headers=(("content-type", "text/html"), ("set-cookie", "a=1"), ("set-cookie", "b=2")),
        content_type="text/html",
        bytes=len(body),
        body_hash="hash-1",
        body=body,
        attempts=2,
        ttfb_ms=12.5,
        elapsed_ms=40.25,
        fetched_at=T0 + 1.5,
        depth=0,
        parent_url="https://a.test/",
        method="GET",
        fields={"title": "Ünïcode", "n": 3, "tags": ["a", "b"], "none": None},
    )
    same_body = ok(r1, body_hash="hash-1", body=body, bytes=len(body))
    not_saved = ok(r2, body_hash="hash-2", bytes=10)  # hash known, body not kept
    bare = ok(r3)
    await store.complete(
        job.id, "w1", Completion(results=[full, same_body, not_saved, bare]), now=T0
    )
    got = await all_results(store, job.id, with_bodies=True)
    assert got[0] == full
    assert got[1].body == body
    assert got[2].body is None and got[2].body_hash == "hash-2"
    assert got[3] == bare
    assert (got[3].redirects, got[3].headers, got[3].fields) == ((), (), None)
    without = await all_results(store, job.id)
    assert [r.body for r in without] == [None] * 4
    assert without[0].headers == full.headers
    assert await store.get_body("hash-1") == body
    assert await store.get_body("hash-2") is None
    assert await store.get_body("nope") is None


async def test_text_that_cannot_be_stored_does_not_fail_the_batch(
    store: Store, job: JobInfo
) -> None:
    """Lone surrogates (what decoding garbage with surrogateescape leaves) come back as
    given or with U+FFFD in their place; the batch is stored either way."""
    bad = "caf\udce9"

    def same_or_replaced(got: object, sent: str) -> bool:
        return got in (sent, sent.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))

    await store.add_requests(job.id, [new_request("s", parent_url=bad)], now=T0)
    (request,) = await lease_all(store, job.id)
    assert same_or_replaced(request.parent_url, bad)
    result = ok(request, content_type=bad, error=bad, headers=(("x-name", bad),))
    found = NewRequest(url=f"https://a.test/{bad}", fingerprint=b"bad", host="a.test")
    batch = Completion(results=[result], discovered=[found])
    assert await store.complete(job.id, "w1", batch, now=T0) == 1
    (got,) = await all_results(store, job.id)
    assert same_or_replaced(got.content_type, bad)
    assert same_or_replaced(got.error, bad)
    assert same_or_replaced(got.headers[0][1], bad)
    (leased,) = await lease_all(store, job.id)
    assert same_or_replaced(leased.url, found.url)


async def test_fields_json_cannot_hold_are_kept_as_text(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(1), now=T0)
    (request,) = await lease_all(store, job.id)
    fields: dict[str, object] = {"raw": b"\xffab", "tags": ("x", "y"), "price": Decimal("1.50")}
    await store.complete(job.id, "w1", Completion(results=[ok(request, fields=fields)]), now=T0)
    (got,) = await all_results(store, job.id)
    assert got.fields == {"raw": "\ufffdab", "tags": ["x", "y"], "price": "1.50"}


async def test_summary_on_a_known_data_set(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(107), now=T0)
    leased = await lease_all(store, job.id)
    statuses = [200] * 70 + [404] * 20 + [503] * 10
    results = [
        ok(r, status=status, elapsed_ms=float(i + 1), bytes=10, fetched_at=T0 + i)
        for i, (r, status) in enumerate(zip(leased, statuses, strict=False))
    ]
    results[3].error_kind = "too_large"  # a status and an error kind: counted in both
    results += [
        ok(r, status=None, error_kind="dns_error", elapsed_ms=5000.0, fetched_at=T0 + 200)
        for r in leased[100:105]
    ]
    await store.complete(job.id, "w1", Completion(results=results), now=T0)
    summary = await store.summary(job.id)
    assert summary.counts == JobCounts(leased=2, done=100, failed=5)
    assert summary.by_status_class == {"2xx": 70, "4xx": 20, "5xx": 10}
    assert summary.by_error_kind == {"dns_error": 5, "too_large": 1}
    assert summary.bytes == 1000
    assert summary.p50_ms == 50.0
    assert summary.p95_ms == 95.0
    assert (summary.first_fetched_at, summary.last_fetched_at) == (T0, T0 + 200)
    quick = await store.summary(job.id, percentiles=False)
    assert (quick.p50_ms, quick.p95_ms) == (None, None)
    assert replace(quick, p50_ms=50.0, p95_ms=95.0) == summary


async def test_summary_of_an_empty_job(store: Store, job: JobInfo) -> None:
    summary = await store.summary(job.id)
    assert summary.counts == JobCounts()
    assert (summary.by_status_class, summary.by_error_kind, summary.bytes) == ({}, {}, 0)
    assert (summary.p50_ms, summary.p95_ms) == (None, None)
    assert (summary.first_fetched_at, summary.last_fetched_at) == (None, None)


async def test_summary_percentiles_of_one_row(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(1), now=T0)
    (request,) = await lease_all(store, job.id)
    await store.complete(job.id, "w1", Completion(results=[ok(request, elapsed_ms=7.5)]), now=T0)
    summary = await store.summary(job.id)
    assert (summary.p50_ms, summary.p95_ms) == (7.5, 7.5)


# -- jobs ---------------------------------------------------------------------


async def test_ensure_job_creates_once(store: Store) -> None:
    assert await store.get_job("crawl-1") is None
    config = {"seeds": ["https://a.test/"], "limits": {"depth": 3}, "robots": True}
    created = await store.ensure_job("crawl-1", mode="crawl", config=config)
    assert (created.name, created.mode, created.config) == ("crawl-1", "crawl", config)
    again = await store.ensure_job("crawl-1", mode="fetch", config={"other": 1})
    assert again == created
    assert await store.get_job("crawl-1") == created
    second = await store.ensure_job("fetch-1", mode="fetch", config={})
    assert [j.name for j in await store.list_jobs()] == ["crawl-1", "fetch-1"]
    assert second.id != created.id


async def test_jobs_are_isolated(store: Store, job: JobInfo) -> None:
    other = await store.ensure_job("other", mode="crawl", config={})
    await store.add_requests(job.id, new_requests(3), now=T0)
    await store.add_requests(other.id, new_requests(2, start=10), now=T0)
    mine = await lease_all(store, job.id, owner="w")
    assert {r.url for r in mine} == {f"https://a.test/{i}" for i in range(3)}
    theirs = await lease_all(store, other.id, owner="w")
    assert len(theirs) == 2
    # A batch sent with the wrong job id touches nothing.
    wrong = Completion(results=[ok(mine[0])], released=[mine[1].id])
    await store.complete(other.id, "w", wrong, now=T0)
    assert await store.counts(job.id) == JobCounts(leased=3)
    assert await store.counts(other.id) == JobCounts(leased=2)
    assert await all_results(store, other.id) == []
    assert await store.release_leases(job.id, "w", now=T0) == 3
    assert await store.counts(other.id) == JobCounts(leased=2)
    assert await store.next_due(other.id) is None


async def test_open_twice_is_harmless(store: Store, job: JobInfo) -> None:
    await store.open()
    assert await store.get_job("job") == job
    assert store.location


# -- a property over any sequence of operations --------------------------------

TTL = 10.0
OWNERS = st.sampled_from(["a", "b"])
LEASE = st.tuples(st.just("lease"), OWNERS, st.integers(0, 4))
TICK = st.tuples(st.just("tick"), st.integers(1, 12).map(float))
OPS = st.lists(
    st.one_of(
        LEASE,
        TICK,
        st.tuples(st.just("add"), st.integers(1, 4)),
        st.tuples(st.just("finish"), OWNERS, st.integers(0, 5), st.booleans()),
        st.tuples(st.just("retry"), OWNERS, st.integers(0, 5), st.sampled_from([0.0, 15.0])),
        st.tuples(st.just("release"), OWNERS, st.integers(0, 5)),
        st.tuples(st.just("release_all"), OWNERS, st.booleans()),
        st.tuples(st.just("mark"), OWNERS, st.integers(0, 5)),
        st.tuples(st.just("limit"), st.none() | st.integers(0, 12)),
        LEASE,
        TICK,
    ),
    min_size=2,
    max_size=30,
)
_example = itertools.count()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=OPS)
async def test_any_sequence_keeps_one_state_and_at_most_one_result(
    store: Store, ops: list[tuple[object, ...]]
) -> None:
    """A model tracks who holds what; the store must never hand a held row to another
    owner, reopen a finished row, or record a second result. It also tracks each row's
    attempts, suspicion and crashes, and what ``max_pages`` lets in."""
    job = await store.ensure_job(f"prop-{next(_example)}", mode="crawl", config={})
    now = T0
    admitted = await store.add_requests(job.id, new_requests(4), now=now)
    holder: dict[int, tuple[str, float]] = {}  # open rows leased, per the model
    finished: dict[int, bool] = {}  # row → done (True) or failed (False)
    believed: dict[str, list[int]] = {"a": [], "b": []}  # what each owner thinks it holds
    attempts: dict[int, int] = {}
    suspect: dict[int, int] = {}  # 0 normal, 1 held by a worker that stopped, 2 started
    crashes: dict[int, int] = {}
    max_pages: int | None = None
    rejected = 0

    def take(owner: str, pick: int) -> int | None:
        ids = believed[owner]
        return ids.pop(pick % len(ids)) if ids else None

    def stopped(rid: int) -> None:
        """What happens to a row when the worker holding it stopped."""
        crashes[rid] = crashes.get(rid, 0) + (suspect.get(rid) == 2)
        suspect[rid] = 1

    for op in ops:
        match op:
            case ("add", int(n)):
                fresh = new_requests(n, start=admitted)
                room = n if max_pages is None else max(0, min(n, max_pages - admitted))
                assert await store.add_requests(job.id, fresh + fresh[:1], now=now) == room
                admitted += room
                rejected += n - room
            case ("limit", limit):
                assert limit is None or isinstance(limit, int)
                max_pages = limit
                await store.set_limits(job.id, max_pages=limit, max_pages_per_host=None)
            case ("lease", str(owner), int(limit)):
                for r in await store.lease(job.id, owner, limit=limit, now=now, ttl=TTL):
                    assert r.id not in finished, "a finished row was leased again"
                    if r.id in holder:
                        assert holder[r.id][1] < now, "a row was leased while held"
                        stopped(r.id)  # its worker vanished
                    assert r.attempts == attempts.get(r.id, 0)
                    assert r.suspect == (suspect.get(r.id, 0) > 0)
                    assert r.crashes == crashes.get(r.id, 0)
                    holder[r.id] = (owner, now + TTL)
                    believed[owner].append(r.id)
            case ("finish", str(owner), int(pick), bool(success)):
                if (rid := take(owner, pick)) is not None:
                    result = FetchResult(
                        request_id=rid, url="u", status=200 if success else None, fetched_at=now
                    )
                    await store.complete(job.id, owner, Completion(results=[result]), now=now)
                    if rid not in finished:
                        finished[rid] = success
                        holder.pop(rid, None)
            case ("retry", str(owner), int(pick), float(delay)):
                if (rid := take(owner, pick)) is not None:
                    retry = RetryUpdate(
                        request_id=rid, attempts=1, next_at=now + delay, error_kind=None, error=None
                    )
                    await store.complete(job.id, owner, Completion(retries=[retry]), now=now)
                    if holder.get(rid, ("",))[0] == owner:
                        del holder[rid]
                        attempts[rid] = 1
                        suspect[rid] = 0
            case ("release", str(owner), int(pick)):
                if (rid := take(owner, pick)) is not None:
                    await store.complete(job.id, owner, Completion(released=[rid]), now=now)
                    if holder.get(rid, ("",))[0] == owner:
                        del holder[rid]
                        suspect[rid] = min(suspect.get(rid, 0), 1)
            case ("release_all", str(owner), bool(crashed)):
                mine = [rid for rid, (who, _) in holder.items() if who == owner]
                released = await store.release_leases(job.id, owner, crashed=crashed, now=T0)
                assert released == len(mine)
                for rid in mine:
                    del holder[rid]
                    if crashed:
                        stopped(rid)
                    else:
                        suspect[rid] = min(suspect.get(rid, 0), 1)
            case ("mark", str(owner), int(pick)):
                ids = believed[owner]
                if ids:
                    rid = ids[pick % len(ids)]
                    live = holder.get(rid, ("", 0.0))
                    expected = int(live[0] == owner and live[1] >= now)
                    assert await store.mark_started(job.id, owner, [rid], now=now) == expected
                    if expected:
                        suspect[rid] = 2
            case ("tick", float(seconds)):
                now += seconds
        counts = await store.counts(job.id)
        assert counts.total == admitted
        assert counts.leased == len(holder)
        assert counts.done == sum(finished.values())
        assert counts.failed == len(finished) - sum(finished.values())
    assert await store.counters(job.id) == ({"max_pages": rejected} if rejected else {})
    results = await all_results(store, job.id, batch_size=7)
    assert [r.request_id for r in results] == sorted(finished)
    assert [r.status is not None for r in results] == [finished[k] for k in sorted(finished)]


async def test_results_keep_the_encoding_a_page_was_decoded_with(
    store: Store, job: JobInfo
) -> None:
    await store.add_requests(job.id, new_requests(2), now=T0)
    latin, plain = await lease_all(store, job.id)
    batch = Completion(results=[ok(latin, encoding="cp1252"), ok(plain)])
    await store.complete(job.id, "w1", batch, now=T0 + 1)
    assert [r.encoding for r in await all_results(store, job.id)] == ["cp1252", None]


# -- looking requests up ----------------------------------------------------------


async def test_find_requests_gives_row_ids_and_results_of_admitted_fingerprints(
    store: Store, job: JobInfo
) -> None:
    await store.add_requests(job.id, new_requests(3), now=T0)
    r0, r1, r2 = await lease_all(store, job.id)
    await store.complete(job.id, "w1", Completion(results=[ok(r1, status=203)]), now=T0 + 1)
    other = await store.ensure_job("other", mode="fetch", config={})
    await store.add_requests(other.id, [new_request(0)], now=T0)
    fingerprints = [new_request(i).fingerprint for i in (0, 1, 1, 2, 7)]
    found = await store.find_requests(job.id, fingerprints)
    assert set(found) == {new_request(i).fingerprint for i in (0, 1, 2)}
    assert [found[new_request(i).fingerprint].id for i in (0, 1, 2)] == [r0.id, r1.id, r2.id]
    assert found[new_request(0).fingerprint].result is None
    result = found[new_request(1).fingerprint].result
    assert result is not None
    assert (result.request_id, result.url, result.status) == (r1.id, r1.url, 203)
    assert await store.find_requests(job.id, []) == {}


async def test_find_requests_reads_past_one_statements_parameters(
    store: Store, job: JobInfo
) -> None:
    await store.add_requests(job.id, new_requests(1200), now=T0)
    found = await store.find_requests(job.id, [r.fingerprint for r in new_requests(1300)])
    assert len(found) == 1200


async def test_results_keep_the_proxy_they_went_through(store: Store, job: JobInfo) -> None:
    await store.add_requests(job.id, new_requests(2), now=T0)
    proxied, direct = await lease_all(store, job.id)
    batch = Completion(results=[ok(proxied, proxy="http://proxy.test:3128"), ok(direct)])
    await store.complete(job.id, "w1", batch, now=T0 + 1)
    assert [r.proxy for r in await all_results(store, job.id)] == ["http://proxy.test:3128", None]


# -- hosts, for people ---------------------------------------------------------


async def test_hosts_show_rows_by_state_pacing_and_robots(store: Store, job: JobInfo) -> None:
    await store.add_requests(
        job.id,
        [
            *(new_request(n, host="busy.test") for n in range(4)),
            new_request("one", host="quiet.test"),
        ],
        now=T0,
    )
    leased = await store.lease(job.id, "w", limit=10, now=T0, ttl=60, gap=0.25)
    busy = [r for r in leased if r.host == "busy.test"]
    done = Completion(results=[ok(busy[0]), ok(busy[1], status=None, error_kind="dns_error")])
    await store.complete(job.id, "w", done, now=T0 + 1)
    await store.put_robots(job.id, "https://busy.test", "{}", expires=T0 + 1000)

    views = {view.host: view for view in await store.hosts(job.id)}
    assert list(views) == ["busy.test", "quiet.test"]  # the busiest first
    assert (views["busy.test"].done, views["busy.test"].failed) == (1, 1)
    assert views["busy.test"].leased == 2 and views["busy.test"].waiting == 0
    assert views["busy.test"].robots_cached and not views["quiet.test"].robots_cached
    assert views["busy.test"].owner == "w"
    assert [v.host for v in await store.hosts(job.id, limit=1)] == ["busy.test"]
