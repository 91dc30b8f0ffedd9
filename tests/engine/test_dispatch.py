"""The Dispatcher on its own: hand-offs survive cancellation at every await point."""

from __future__ import annotations

import asyncio

import pytest

from shoal.core.model import Request
from shoal.core.schedule import HostScheduler
from shoal.engine.frontier.dispatch import Dispatcher


def _requests(n: int, host: str = "a.test") -> list[Request]:
    return [Request(id=i, url=f"http://{host}/{i}", host=host) for i in range(n)]


def _dispatcher(*, per_host: int = 1, delay: float = 0.0) -> Dispatcher:
    return Dispatcher(HostScheduler(per_host=per_host, delay=delay), low_water=1)


async def _waiting(dispatch: Dispatcher) -> asyncio.Task[Request | None]:
    task = asyncio.create_task(dispatch.acquire())
    await asyncio.sleep(0)  # it runs up to its wait
    assert not task.done()
    return task


async def test_a_worker_cancelled_while_waiting_takes_nothing() -> None:
    dispatch = _dispatcher()
    task = await _waiting(dispatch)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    dispatch.add(_requests(1))
    assert dispatch.acquire_nowait() is not None


async def test_a_worker_cancelled_after_the_hand_off_gives_the_request_back() -> None:
    """Cancelled after its future got a request, before it ran again: the request is first
    in line again and its host's only slot is free, for the next worker."""
    dispatch = _dispatcher()
    first = await _waiting(dispatch)
    second = await _waiting(dispatch)
    dispatch.add(_requests(2))  # hands request 0 to the first worker
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    handed = await second
    assert handed is not None and handed.id == 0
    assert dispatch.in_flight == 1 and dispatch.queued == 1


async def test_a_hand_off_by_the_timer_is_given_back_too() -> None:
    dispatch = _dispatcher(delay=0.01)
    dispatch.add(_requests(2))
    started = dispatch.acquire_nowait()
    assert started is not None
    dispatch.release(started)
    task = await _waiting(dispatch)  # request 1 is due after the delay: a timer is armed
    loop = asyncio.get_running_loop()
    # Runs right after the dispatcher's timer callback, which was scheduled first for the
    # same moment: after the hand-off, before the worker resumes.
    assert dispatch._timer is not None
    loop.call_at(dispatch._timer_at, task.cancel)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert dispatch.in_flight == 0 and dispatch.queued == 1
    again = await dispatch.acquire()
    assert again is not None and again.id == 1


@pytest.mark.parametrize("turns", range(12))
async def test_cancelling_a_worker_at_any_point_loses_no_request(turns: int) -> None:
    """A worker takes and fetches requests one at a time, as the crawler's do (a request
    cancelled mid-fetch is released); it is cancelled after ``turns`` turns of the loop,
    wherever it is. Every request is then finished, released or still queued, once, and
    no host slot is held."""
    dispatch = _dispatcher()
    finished: list[int] = []
    released: list[int] = []

    async def worker() -> None:
        while (request := await dispatch.acquire()) is not None:
            try:
                await asyncio.sleep(0)  # the fetch
            except asyncio.CancelledError:
                released.append(request.id)
                raise
            finally:
                dispatch.release(request)
            finished.append(request.id)

    task = asyncio.create_task(worker())
    for batch in range(3):
        dispatch.add(_requests(2, host=f"h{batch}.test"))
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    queued = [request.id for request in dispatch.close()]
    assert dispatch.in_flight == 0
    assert sorted(finished + released + queued) == [0, 0, 0, 1, 1, 1]


async def test_a_delayed_host_is_handed_out_on_the_clocks_time() -> None:
    """On a fake clock: a worker waiting for a host held back by its delay gets the request
    when the clock reaches the due time, not before (time jumps; the test takes no time)."""
    from shoal.engine.clock import FakeClock

    clock = FakeClock(start=10.0)
    dispatch = Dispatcher(HostScheduler(per_host=1, delay=5.0), low_water=1, clock=clock)
    dispatch.add(_requests(3))
    starts = []
    for _ in range(3):
        request = await dispatch.acquire()
        assert request is not None
        starts.append(clock.monotonic())
        dispatch.release(request)
    assert starts == [10.0, 15.0, 20.0]
