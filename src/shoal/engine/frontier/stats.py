"""Live counters of a running job, cheap to bump on the hot path.

Only the crawler mutates ``LiveStats``; anyone else reads a frozen
``StatsSnapshot`` from ``snapshot()``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["LiveStats", "StatsSnapshot"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StatsSnapshot:
    total: int
    finished: int
    finished_this_run: int
    done: int
    failed: int
    retries: int
    in_flight: int
    queued: int
    bytes: int
    by_status_class: dict[str, int] = field(default_factory=dict)
    by_error_kind: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    fetch_processes: int = 0  # the most child processes fetching at once this run
    robots_waiting: tuple[str, ...] = ()  # origins whose robots.txt is awaited
    proxies_taken_out: int = 0  # times a failing proxy was taken out of the rotation
    changes: dict[str, int] = field(default_factory=dict)  # a recrawl's answers, by change

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.finished)


class LiveStats:
    __slots__ = (
        "by_error_kind",
        "by_status",
        "bytes",
        "changes",
        "done",
        "failed",
        "fetch_processes",
        "finished_before",
        "in_flight",
        "proxies_taken_out",
        "queued",
        "rejected",
        "retries",
        "robots_waiting",
        "started_at",
        "total",
    )

    def __init__(self) -> None:
        self.total = 0
        self.finished_before = 0
        self.done = 0
        self.failed = 0
        self.retries = 0
        self.bytes = 0
        self.in_flight = 0
        self.queued = 0
        self.started_at = 0.0
        self.fetch_processes = 0
        self.robots_waiting: list[str] = []
        self.proxies_taken_out = 0
        self.by_status: Counter[int] = Counter()
        self.by_error_kind: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()  # discovered URLs not followed, by reason
        self.changes: Counter[str] = Counter()  # a recrawl's answers (core.revisit.Change)

    def snapshot(self, now: float) -> StatsSnapshot:
        classes: Counter[str] = Counter()
        for status, n in self.by_status.items():
            classes[f"{status // 100}xx"] += n
        this_run = self.done + self.failed
        return StatsSnapshot(
            total=self.total,
            finished=self.finished_before + this_run,
            finished_this_run=this_run,
            done=self.done,
            failed=self.failed,
            retries=self.retries,
            in_flight=self.in_flight,
            queued=self.queued,
            bytes=self.bytes,
            by_status_class=dict(classes),
            by_error_kind=dict(self.by_error_kind),
            rejected=dict(self.rejected),
            elapsed=max(0.0, now - self.started_at) if self.started_at else 0.0,
            fetch_processes=self.fetch_processes,
            robots_waiting=tuple(self.robots_waiting),
            proxies_taken_out=self.proxies_taken_out,
            changes=dict(self.changes),
        )
