"""The Recorder on its own, on a fake clock: every row it holds is settled once, through
the lifecycle; retries and host pauses are timed by the engine's clock."""

from __future__ import annotations

import pytest

from shoal.core.config import CrawlConfig, RetryPolicy
from shoal.core.errors import IllegalTransition
from shoal.core.kinds import ErrorKind
from shoal.core.model import FetchResult, Request
from shoal.core.schedule import HostScheduler
from shoal.engine.clock import FakeClock
from shoal.engine.fetch.fetcher import Attempt
from shoal.engine.frontier.dispatch import Dispatcher
from shoal.engine.frontier.recorder import Recorder
from shoal.engine.frontier.stats import LiveStats


def _recorder(clock: FakeClock | None = None, config: CrawlConfig | None = None) -> Recorder:
    clock = clock or FakeClock()
    dispatch = Dispatcher(HostScheduler(per_host=1), low_water=1, clock=clock)
    return Recorder(
        config or CrawlConfig(),
        LiveStats(),
        dispatch,
        processor=None,
        autothrottle=None,
        sitemaps_from_robots=False,
        host_pause=30.0,
        seed=0,
        clock=clock,
    )


def _request(rid: int) -> Request:
    return Request(id=rid, url=f"http://a.test/{rid}", host="a.test")


def _attempt(request: Request, status: int | None) -> Attempt:
    result = FetchResult(
        request_id=request.id,
        url=request.url,
        status=status,
        error_kind=None if status is not None else ErrorKind.INVALID_URL,
        attempts=request.attempts + 1,
        fetched_at=0.0,
    )
    return Attempt(result=result, body=None, retry_after=None)


async def test_each_held_row_is_settled_once() -> None:
    recorder = _recorder()
    done, failed, given_back, refused = (_request(i) for i in range(4))
    recorder.leased([done, failed, given_back, refused])
    assert recorder.held == 4
    recorder.record(done, _attempt(done, 200))
    recorder.record(failed, _attempt(failed, None))
    recorder.release(given_back)
    recorder.record_failure(refused, ErrorKind.ROBOTS_DISALLOWED, "no")
    assert recorder.held == 0
    batch = recorder.take()
    assert [r.request_id for r in batch.results] == [done.id, failed.id, refused.id]
    assert batch.released == [given_back.id]
    for request in (done, failed, given_back, refused):
        with pytest.raises(IllegalTransition):
            recorder.release(request)
    with pytest.raises(IllegalTransition):
        recorder.record(done, _attempt(done, 200))
    assert len(recorder.buffer) == 0


async def test_a_row_leased_again_is_held_once() -> None:
    recorder = _recorder()
    request = _request(1)
    recorder.leased([request])
    recorder.leased([request])  # its lease lapsed and this run took it over
    assert recorder.held == 1
    recorder.release(request)
    with pytest.raises(IllegalTransition):
        recorder.release(request)


async def test_a_row_not_leased_cannot_be_settled() -> None:
    with pytest.raises(IllegalTransition, match="does not hold"):
        _recorder().release(_request(7))


async def test_a_retry_after_pauses_the_host_on_the_engines_clock() -> None:
    """A 503 with Retry-After: 20 is a retry due 20 s later by the clock's wall time, and
    the host starts nothing before then by its monotonic time."""
    clock = FakeClock(start=50.0, epoch=1_000.0)
    config = CrawlConfig(retry=RetryPolicy(retries=2))
    recorder = _recorder(clock, config)
    dispatch = recorder.dispatch
    busy, waiting = _request(1), _request(2)
    recorder.leased([busy, waiting])
    dispatch.add([busy, waiting])
    assert dispatch.acquire_nowait() is busy
    dispatch.release(busy)
    attempt = _attempt(busy, 503)
    attempt.retry_after = "20"
    recorder.record(busy, attempt)
    (retry,) = recorder.take().retries
    assert retry.next_at == 1_020.0
    assert dispatch.acquire_nowait() is None  # paused
    clock.advance(19.9)
    assert dispatch.acquire_nowait() is None
    clock.advance(0.1)
    assert dispatch.acquire_nowait() is waiting
