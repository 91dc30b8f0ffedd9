"""The Store contract for managing jobs: removal (``delete_job``), the store's size, and
results read through a ``ResultFilter`` (filtered by the store's query)."""

from __future__ import annotations

import pytest

from shoal.core.filters import ResultFilter
from shoal.core.model import Completion, JobCounts, JobInfo
from shoal.core.ports import Store

from .storekit import T0, all_results, lease_all, new_requests, ok


async def _finish(store: Store, job: JobInfo, n: int, **result: object) -> None:
    await store.add_requests(job.id, new_requests(n), now=T0)
    rows = await lease_all(store, job.id)
    await store.complete(job.id, "w1", Completion(results=[ok(r, **result) for r in rows]), now=T0)


async def test_delete_job_removes_every_row_of_that_job_only(store: Store, job: JobInfo) -> None:
    other = await store.ensure_job("other", mode="fetch", config={})
    shared, own = b"<p>same page</p>", b"<p>only in job</p>"
    await store.add_requests(job.id, new_requests(3), now=T0)
    r0, r1, _ = await lease_all(store, job.id)
    await store.complete(
        job.id,
        "w1",
        Completion(
            results=[
                ok(r0, body_hash="shared", body=shared, bytes=len(shared)),
                ok(r1, body_hash="own", body=own, bytes=len(own)),
            ],
            counters={"out_of_scope": 2},
        ),
        now=T0,
    )
    await store.put_robots(job.id, "a.test", "{}", expires=T0 + 100)
    await store.register_worker(job.id, "w1", pid=1, hostname="h", now=T0)
    await store.add_requests(other.id, new_requests(1), now=T0)
    (o0,) = await lease_all(store, other.id)
    await store.complete(
        other.id,
        "w1",
        Completion(results=[ok(o0, body_hash="shared", body=shared, bytes=len(shared))]),
        now=T0,
    )

    assert await store.delete_job(job.id) is True

    assert await store.get_job("job") is None
    assert [j.name for j in await store.list_jobs()] == ["other"]
    assert await store.counts(job.id) == JobCounts()
    assert await store.counters(job.id) == {}
    assert await all_results(store, job.id) == []
    assert await store.list_workers(job.id) == []
    assert await store.get_robots(job.id, "a.test", now=T0) is None
    assert await store.get_body("own") is None
    assert await store.get_body("shared") == shared  # the other job still refers to it
    assert [r.body for r in await all_results(store, other.id, with_bodies=True)] == [shared]
    assert await store.counts(other.id) == JobCounts(done=1)


async def test_delete_job_leaves_a_job_with_a_live_worker(store: Store, job: JobInfo) -> None:
    await _finish(store, job, 2)
    await store.register_worker(job.id, "w1", pid=1, hostname="h", now=T0)
    assert await store.delete_job(job.id, alive_since=T0 - 60) is False
    assert await store.counts(job.id) == JobCounts(done=2)
    assert await store.delete_job(job.id, alive_since=T0 + 1) is True  # heartbeat too old
    assert await store.get_job("job") is None


async def test_a_deleted_jobs_id_is_never_reused_and_its_urls_are_admitted_anew(
    store: Store, job: JobInfo
) -> None:
    await _finish(store, job, 2)
    assert await store.delete_job(job.id) is True
    again = await store.ensure_job("job", mode="crawl", config={})
    assert again.id > job.id
    assert await store.add_requests(again.id, new_requests(2), now=T0) == 2
    assert await store.counts(again.id) == JobCounts(pending=2)
    assert await store.delete_job(job.id) is True  # gone already: nothing to do


async def test_size_bytes_counts_the_whole_store(store: Store, job: JobInfo) -> None:
    before = await store.size_bytes()
    assert before > 0
    body = bytes(range(256)) * 4000
    await _finish(store, job, 50, body_hash="big", body=body, bytes=len(body))
    assert await store.size_bytes() >= before
    summary = await store.summary(job.id)
    assert type(summary.bytes) is int and summary.bytes == 50 * len(body)  # JSON-ready


_STATUSES = [200, 204, 301, 404, 410, 500, 503, None, None]
_KINDS = [None, None, None, None, None, "too_large", None, "dns_error", "read_timeout"]

_FILTERS = [
    ResultFilter(),
    ResultFilter(status_classes=(2,)),
    ResultFilter(status_classes=(4, 5)),
    ResultFilter(statuses=(404,)),
    ResultFilter(status_classes=(2,), statuses=(404, 503)),
    ResultFilter(error_kinds=("dns_error",)),
    ResultFilter(error_kinds=("dns_error", "too_large")),
    ResultFilter(failed=True),
    ResultFilter(failed=True, status_classes=(5,)),
    ResultFilter(failed=True, error_kinds=("read_timeout",)),
    ResultFilter(status_classes=(3,), error_kinds=("dns_error",)),
]


@pytest.mark.parametrize("where", _FILTERS, ids=repr)
async def test_iter_results_selects_what_the_filter_matches(
    store: Store, job: JobInfo, where: ResultFilter
) -> None:
    await store.add_requests(job.id, new_requests(len(_STATUSES)), now=T0)
    rows = await lease_all(store, job.id)
    results = [
        ok(r, status=status, error_kind=kind)
        for r, status, kind in zip(rows, _STATUSES, _KINDS, strict=True)
    ]
    await store.complete(job.id, "w1", Completion(results=results), now=T0)
    everything = await all_results(store, job.id)
    got = []
    async for batch in store.iter_results(job.id, batch_size=2, where=where):
        got.extend(batch)
    assert [r.request_id for r in got] == [r.request_id for r in everything if where.matches(r)]
