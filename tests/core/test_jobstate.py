from __future__ import annotations

from shoal.core.jobstate import JobState, job_state, live_workers
from shoal.core.model import JobCounts, WorkerInfo


def _worker(heartbeat_at: float) -> WorkerInfo:
    return WorkerInfo(owner="w", pid=1, hostname="h", started_at=0.0, heartbeat_at=heartbeat_at)


def test_a_live_worker_means_running_whatever_the_counts() -> None:
    for counts in (JobCounts(), JobCounts(pending=3), JobCounts(done=3)):
        state = job_state(counts=counts, workers=[_worker(95.0)], now=100.0, ttl=60.0)
        assert state is JobState.RUNNING


def test_without_a_live_worker_open_rows_mean_interrupted() -> None:
    dead = [_worker(30.0)]
    assert job_state(counts=JobCounts(leased=1), workers=dead, now=100.0, ttl=60.0) == (
        JobState.INTERRUPTED
    )
    assert job_state(counts=JobCounts(done=2, failed=1), workers=dead, now=100.0, ttl=60.0) == (
        JobState.FINISHED
    )
    assert job_state(counts=JobCounts(), workers=[], now=100.0, ttl=60.0) == JobState.FINISHED


def test_a_heartbeat_exactly_ttl_ago_is_still_alive() -> None:
    assert live_workers([_worker(40.0), _worker(39.9)], now=100.0, ttl=60.0) == [_worker(40.0)]
