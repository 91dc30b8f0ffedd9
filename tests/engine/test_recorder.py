"""The Recorder on its own: every row it holds is settled once, through the lifecycle."""

from __future__ import annotations

import pytest

from shoal.core.config import CrawlConfig
from shoal.core.errors import IllegalTransition
from shoal.core.kinds import ErrorKind
from shoal.core.model import FetchResult, Request
from shoal.engine.fetcher import Attempt
from shoal.engine.recorder import Recorder
from shoal.engine.stats import LiveStats


def _recorder() -> Recorder:
    return Recorder(
        CrawlConfig(),
        LiveStats(),
        processor=None,
        autothrottle=None,
        sitemaps_from_robots=False,
        host_pause=30.0,
        seed=0,
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


def test_each_held_row_is_settled_once() -> None:
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


def test_a_row_leased_again_is_held_once() -> None:
    recorder = _recorder()
    request = _request(1)
    recorder.leased([request])
    recorder.leased([request])  # its lease lapsed and this run took it over
    assert recorder.held == 1
    recorder.release(request)
    with pytest.raises(IllegalTransition):
        recorder.release(request)


def test_a_row_not_leased_cannot_be_settled() -> None:
    with pytest.raises(IllegalTransition, match="does not hold"):
        _recorder().release(_request(7))
