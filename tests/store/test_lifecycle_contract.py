"""The store follows the lifecycle table: every allowed step, every forbidden one.

For each state a row can be in and each store operation, the row is put in that state,
the operation is applied, and the row must end where ``core.lifecycle`` says: where the
table allows one of the operation's steps from that state, its target; otherwise the
row is left as it was. Run on every backend.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from shoal.core.errors import IllegalTransition
from shoal.core.lifecycle import STEPS, Row, State, Step, Suspicion, after, transition
from shoal.core.model import Completion, JobCounts, JobInfo, Request, RetryUpdate
from shoal.core.ports import Store

from .storekit import T0, lease_all, new_requests, ok

TTL = 10.0  # the rows' lease, taken at T0 by "a", lapses after T0 + TTL


def _retry(request: Request, *, at: float = T0) -> RetryUpdate:
    return RetryUpdate(
        request_id=request.id, attempts=request.attempts + 1, next_at=at, error_kind=None, error=""
    )


async def _row_in(store: Store, job: JobInfo, state: State) -> Request:
    """One row of ``job`` in ``state``, leased by "a" at T0 if it ever was."""
    await store.add_requests(job.id, new_requests(1), now=T0)
    if state is State.PENDING:
        return await _pending_row(store, job)
    (row,) = await store.lease(job.id, "a", limit=1, now=T0, ttl=TTL)
    batch = {
        State.LEASED: Completion(),
        State.RETRY_WAIT: Completion(retries=[_retry(row)]),
        State.DONE: Completion(results=[ok(row)]),
        State.FAILED: Completion(results=[ok(row, status=None)]),
    }[state]
    await store.complete(job.id, "a", batch, now=T0)
    return row


async def _pending_row(store: Store, job: JobInfo) -> Request:
    # A pending row is seen by leasing it; releasing it makes it pending again, unchanged.
    (row,) = await store.lease(job.id, "a", limit=1, now=T0, ttl=TTL)
    await store.complete(job.id, "a", Completion(released=[row.id]), now=T0)
    return row


Operation = Callable[[Store, JobInfo, Request], Awaitable[object]]

# Each store operation, and the lifecycle steps it takes.
OPERATIONS: dict[str, tuple[Operation, tuple[Step, ...]]] = {
    "lease": (
        lambda s, j, r: s.lease(j.id, "a", limit=10, now=T0 + 1, ttl=TTL),
        (Step.LEASE,),
    ),
    "lease after expiry": (
        lambda s, j, r: s.lease(j.id, "b", limit=10, now=T0 + TTL + 1, ttl=TTL),
        (Step.LEASE, Step.TAKE_OVER),
    ),
    "mark started": (
        lambda s, j, r: s.mark_started(j.id, "a", [r.id], now=T0 + 1),
        (Step.MARK_STARTED,),
    ),
    "result": (
        lambda s, j, r: s.complete(j.id, "a", Completion(results=[ok(r)]), now=T0 + 1),
        (Step.COMPLETE, Step.LATE_COMPLETE),
    ),
    "failure": (
        lambda s, j, r: s.complete(j.id, "a", Completion(results=[ok(r, status=None)]), now=T0 + 1),
        (Step.FAIL, Step.LATE_FAIL),
    ),
    "retry": (
        lambda s, j, r: s.complete(j.id, "a", Completion(retries=[_retry(r)]), now=T0 + 1),
        (Step.RETRY,),
    ),
    "release": (
        lambda s, j, r: s.complete(j.id, "a", Completion(released=[r.id]), now=T0 + 1),
        (Step.RELEASE,),
    ),
    "release all": (
        lambda s, j, r: s.release_leases(j.id, "a", now=T0 + 1),
        (Step.RELEASE,),
    ),
    "reclaim": (
        lambda s, j, r: s.release_leases(j.id, "a", crashed=True, now=T0 + 1),
        (Step.RECLAIM,),
    ),
}


def _counts(state: State) -> JobCounts:
    return JobCounts(**{state.name.lower(): 1})


def _expected(state: State, steps: tuple[Step, ...], attempts: int) -> State:
    """Where the table takes a row in ``state`` by one of ``steps``; unchanged if by none."""
    allowed = [step for step in steps if state in STEPS[step][0]]
    assert len(allowed) <= 1, "an operation takes one step from any one state"
    if not allowed:
        with pytest.raises(IllegalTransition):
            for step in steps:
                transition(state, step, attempts=attempts)
        return state
    return transition(state, allowed[0], attempts=attempts)


def test_the_operations_cover_every_step() -> None:
    assert {step for _, steps in OPERATIONS.values() for step in steps} == set(Step)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("state", list(State), ids=lambda s: s.name.lower())
async def test_each_operation_follows_the_table(
    store: Store, job: JobInfo, state: State, operation: str
) -> None:
    row = await _row_in(store, job, state)
    assert await store.counts(job.id) == _counts(state)
    # The row's attempts as the store keeps them (a retry counted one).
    attempts = 1 if state is State.RETRY_WAIT else 0
    apply, steps = OPERATIONS[operation]
    await apply(store, job, row)
    assert await store.counts(job.id) == _counts(_expected(state, steps, attempts))


async def test_suspicion_follows_the_table(store: Store, job: JobInfo) -> None:
    """A row through a death, a take-over and a retry: its suspicion and crashes in the
    store are what ``after`` computes."""
    await store.add_requests(job.id, new_requests(1), now=T0)
    expected = after(Row(state=State.PENDING), Step.LEASE)
    await lease_all(store, job.id, owner="dead", now=T0, ttl=TTL)
    expected = after(expected, Step.MARK_STARTED)
    (row,) = await store.lease(job.id, "x", limit=1, now=T0, ttl=TTL) or [None]
    assert row is None  # still held
    await store.release_leases(job.id, "dead", crashed=True, now=T0 + 1)

    def seen(request: Request) -> tuple[bool, int]:
        return (request.suspect, request.crashes)

    def wanted(r: Row) -> tuple[bool, int]:
        return (r.suspicion is not Suspicion.CLEAR, r.crashes)

    # "dead" never marked it: a death without a mark counts no crash.
    expected = after(after(Row(state=State.LEASED), Step.RECLAIM), Step.LEASE)
    (row,) = await lease_all(store, job.id, owner="a", now=T0 + 2, ttl=TTL)
    assert seen(row) == wanted(expected) == (True, 0)
    assert await store.mark_started(job.id, "a", [row.id], now=T0 + 2) == 1
    expected = after(expected, Step.MARK_STARTED)
    (row,) = await store.lease(job.id, "b", limit=1, now=T0 + 2 + TTL + 1, ttl=TTL)
    expected = after(expected, Step.TAKE_OVER)
    assert seen(row) == wanted(expected) == (True, 1)
    await store.complete(job.id, "b", Completion(retries=[_retry(row, at=T0)]), now=T0 + 20)
    expected = after(expected, Step.RETRY, attempts=1)
    (row,) = await lease_all(store, job.id, owner="b", now=T0 + 21, ttl=TTL)
    expected = after(expected, Step.LEASE)
    assert seen(row) == wanted(expected) == (False, 1)
    assert row.attempts == expected.attempts == 1
