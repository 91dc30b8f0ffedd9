"""The Store contract for recrawls (``revisit``, ``history``, a result's ``change``), run
against every backend: which rows go back, what they carry, what each answer does to the
result and the history."""

from __future__ import annotations

import time

import pytest

from shoal.core.errors import ConfigError
from shoal.core.model import Completion, FetchResult, JobCounts, JobInfo, Request
from shoal.core.ports import Store
from shoal.core.revisit import Revisit

from .storekit import T0, all_results, lease_all, new_requests, ok


async def _first_crawl(store: Store, job: JobInfo, n: int = 3) -> list[Request]:
    """``n`` pages fetched once: 200 with validators, a body and fields each."""
    await store.add_requests(job.id, new_requests(n), now=T0)
    rows = await lease_all(store, job.id)
    results = [
        ok(
            r,
            etag=f'"e{r.id}"',
            last_modified="Tue, 14 Nov 2023 22:13:20 GMT",
            body_hash=f"h{r.id}",
            body=f"<p>page {r.id}</p>".encode(),
            fields={"title": f"t{r.id}"},
        )
        for r in rows
    ]
    await store.complete(job.id, "w1", Completion(results=results), now=T0)
    return rows


def _again(
    request: Request, change: str, *, status: int | None = 200, **fields: object
) -> FetchResult:
    values: dict[str, object] = {"fetched_at": T0 + 100, "change": change}
    values.update(fields)
    return ok(request, status=status, **values)


async def test_results_keep_their_validators(store: Store, job: JobInfo) -> None:
    rows = await _first_crawl(store, job, 1)
    [result] = await all_results(store, job.id)
    assert (result.etag, result.last_modified) == (
        f'"e{rows[0].id}"',
        "Tue, 14 Nov 2023 22:13:20 GMT",
    )


async def test_revisit_sends_finished_rows_back_with_what_their_results_remember(
    store: Store, job: JobInfo
) -> None:
    await _first_crawl(store, job, 2)
    await store.add_requests(job.id, new_requests(1, start=10), now=T0)  # stays open
    await store.add_requests(job.id, new_requests(1, start=20), now=T0)  # fails
    open_row, failing = await lease_all(store, job.id)
    await store.complete(
        job.id, "w1", Completion(results=[ok(failing, status=None)], released=[open_row.id]), now=T0
    )
    assert await store.revisit(job.id, keep_history=3, now=T0 + 10) == 3
    assert await store.counts(job.id) == JobCounts(pending=4)
    # The results are still there while the rows are asked again.
    assert len(await all_results(store, job.id)) == 3
    leased = {r.url: r.revisit for r in await lease_all(store, job.id, now=T0 + 10)}
    assert leased["https://a.test/0"] == Revisit('"e1"', "Tue, 14 Nov 2023 22:13:20 GMT", 200, "h1")
    assert leased["https://a.test/1"] == Revisit('"e2"', "Tue, 14 Nov 2023 22:13:20 GMT", 200, "h2")
    assert leased["https://a.test/20"] == Revisit(None, None, None, None, "connect_error")
    assert leased["https://a.test/10"] is None  # open: never had a result


async def test_revisit_fetched_before_chooses_only_older_results(
    store: Store, job: JobInfo
) -> None:
    await store.add_requests(job.id, new_requests(3), now=T0)
    rows = await lease_all(store, job.id)
    results = [ok(r, fetched_at=T0 + 10 * i) for i, r in enumerate(rows)]
    await store.complete(job.id, "w1", Completion(results=results), now=T0)
    assert await store.revisit(job.id, fetched_before=T0 + 15, keep_history=3, now=T0 + 50) == 2
    leased = await lease_all(store, job.id, now=T0 + 50)
    assert sorted(r.url for r in leased) == ["https://a.test/0", "https://a.test/1"]
    assert (await store.counts(job.id)).done == 1


async def test_unchanged_keeps_the_result_and_only_confirms_it(store: Store, job: JobInfo) -> None:
    await _first_crawl(store, job, 1)
    [before] = await all_results(store, job.id, with_bodies=True)
    await store.revisit(job.id, keep_history=3, now=T0 + 100)
    [row] = await lease_all(store, job.id, now=T0 + 100)
    answer = _again(row, "unchanged", status=304, etag='"e-new"', body_hash="empty", fields=None)
    await store.complete(job.id, "w1", Completion(results=[answer]), now=T0 + 100)
    [after] = await all_results(store, job.id, with_bodies=True)
    assert after.fetched_at == T0 + 100 and after.etag == '"e-new"'
    assert after.last_modified == before.last_modified  # the 304 did not say: kept
    assert (after.status, after.body_hash, after.body, after.fields) == (
        200,
        before.body_hash,
        before.body,
        before.fields,
    )
    assert await store.history(job.id, row.url) == []
    assert await store.counts(job.id) == JobCounts(done=1)


async def test_a_change_moves_the_result_to_history_which_keeps_the_last_n(
    store: Store, job: JobInfo
) -> None:
    await _first_crawl(store, job, 1)
    for version in (1, 2, 3):
        await store.revisit(job.id, keep_history=2, now=T0 + version)
        [row] = await lease_all(store, job.id, now=T0 + version)
        answer = _again(row, "changed", etag=f'"v{version}"', body_hash=f"b{version}")
        await store.complete(job.id, "w1", Completion(results=[answer]), now=T0 + version)
    [current] = await all_results(store, job.id)
    assert current.etag == '"v3"'
    past = await store.history(job.id, current.url)
    assert [r.etag for r in past] == ['"v2"', '"v1"']  # newest first, the oldest dropped
    assert past[1].fields is None and past[1].body_hash == "b1"
    assert await store.history(job.id, "https://a.test/elsewhere") == []


async def test_gone_keeps_what_was_there_in_history(store: Store, job: JobInfo) -> None:
    rows = await _first_crawl(store, job, 1)
    await store.revisit(job.id, keep_history=3, now=T0 + 1)
    [row] = await lease_all(store, job.id, now=T0 + 1)
    await store.complete(
        job.id, "w1", Completion(results=[_again(row, "gone", status=410)]), now=T0 + 1
    )
    [current] = await all_results(store, job.id)
    assert current.status == 410 and current.fields is None
    [past] = await store.history(job.id, row.url)
    assert (past.status, past.etag, past.fields) == (200, f'"e{rows[0].id}"', {"title": "t1"})


async def test_a_late_second_answer_changes_nothing(store: Store, job: JobInfo) -> None:
    await _first_crawl(store, job, 1)
    await store.revisit(job.id, keep_history=3, now=T0 + 1)
    [row] = await lease_all(store, job.id, now=T0 + 1)
    first = _again(row, "changed", etag='"first"')
    await store.complete(job.id, "w1", Completion(results=[first]), now=T0 + 1)
    for late in (_again(row, "changed", etag='"late"'), _again(row, "unchanged", status=304)):
        await store.complete(job.id, "w2", Completion(results=[late]), now=T0 + 2)
    [current] = await all_results(store, job.id)
    assert (current.etag, current.fetched_at) == ('"first"', T0 + 100)
    assert len(await store.history(job.id, row.url)) == 1


async def test_reopen_forgets_what_a_revisit_remembered(store: Store, job: JobInfo) -> None:
    await _first_crawl(store, job, 1)
    await store.revisit(job.id, keep_history=3, now=T0 + 1)
    [row] = await lease_all(store, job.id, now=T0 + 1)
    await store.complete(job.id, "w1", Completion(results=[_again(row, "changed")]), now=T0 + 1)
    assert await store.reopen(job.id, which="all") == 1
    [again] = await lease_all(store, job.id, now=time.time() + 1)  # reopen's clock
    assert again.revisit is None


@pytest.mark.parametrize("keep", [-1, 1001, True, 2.5])
async def test_keep_history_out_of_range_is_a_config_error(
    store: Store, job: JobInfo, keep: object
) -> None:
    with pytest.raises(ConfigError, match="keep_history"):
        await store.revisit(job.id, keep_history=keep, now=T0)  # type: ignore[arg-type]


async def test_keep_history_zero_keeps_no_history(store: Store, job: JobInfo) -> None:
    await _first_crawl(store, job, 1)
    await store.revisit(job.id, keep_history=0, now=T0 + 1)
    [row] = await lease_all(store, job.id, now=T0 + 1)
    await store.complete(job.id, "w1", Completion(results=[_again(row, "changed")]), now=T0 + 1)
    assert await store.history(job.id, row.url) == []
    assert len(await all_results(store, job.id)) == 1


async def test_delete_job_removes_its_history_and_the_bodies_only_it_kept(
    store: Store, job: JobInfo
) -> None:
    await _first_crawl(store, job, 1)
    await store.revisit(job.id, keep_history=3, now=T0 + 1)
    [row] = await lease_all(store, job.id, now=T0 + 1)
    answer = _again(row, "changed", body_hash="new", body=b"new page")
    await store.complete(job.id, "w1", Completion(results=[answer]), now=T0 + 1)
    assert await store.get_body("h1") == b"<p>page 1</p>"  # kept for the history
    assert await store.delete_job(job.id)
    assert await store.history(job.id, row.url) == []
    assert await store.get_body("h1") is None and await store.get_body("new") is None
