"""What a person sees while a job runs, and the summary after it."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from shoal.core.model import JobSummary
from shoal.engine.frontier.stats import StatsSnapshot

__all__ = ["Progress", "render_summary"]


def _human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


class _Rates:
    """Pages/s and bytes/s over a sliding window of a few seconds."""

    def __init__(self, window: float = 5.0) -> None:
        self._samples: deque[tuple[float, int, int]] = deque()
        self._window = window

    def update(self, now: float, finished: int, nbytes: int) -> tuple[float, float]:
        samples = self._samples
        samples.append((now, finished, nbytes))
        while len(samples) > 2 and now - samples[0][0] > self._window:
            samples.popleft()
        t0, f0, b0 = samples[0]
        span = now - t0
        if span <= 0:
            return 0.0, 0.0
        return (finished - f0) / span, (nbytes - b0) / span


def _by_count(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


# Outcomes that are shoal choosing not to fetch, not failures: counted apart, as skipped.
_SKIPPED = frozenset({"robots_disallowed", "out_of_scope", "sitemap_missing"})


def _split_skipped(by_error_kind: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """(errors, skipped by reason) from counts by error kind."""
    errors = {k: v for k, v in by_error_kind.items() if k not in _SKIPPED}
    skipped = {k: v for k, v in by_error_kind.items() if k in _SKIPPED and v}
    return errors, skipped


def _errors_text(snap: StatsSnapshot) -> str:
    parts = [f"{k} {v:,}" for k, v in sorted(snap.by_status_class.items())]
    errors, skipped = _split_skipped(snap.by_error_kind)
    if errors:
        kinds = _by_count(errors)[:5]
        parts.append("errors: " + ", ".join(f"{k} {v:,}" for k, v in kinds))
    if skipped:
        parts.append("skipped: " + ", ".join(f"{k} {v:,}" for k, v in _by_count(skipped)))
    if snap.rejected:
        reasons = _by_count(snap.rejected)[:4]
        parts.append("not followed: " + ", ".join(f"{k} {v:,}" for k, v in reasons))
    if snap.robots_waiting:
        shown = ", ".join(snap.robots_waiting[:3])
        more = len(snap.robots_waiting) - 3
        parts.append(f"waiting for robots.txt: {shown}" + (f" (+{more:,})" if more > 0 else ""))
    return " · ".join(parts) if parts else "no results yet"


class Progress:
    """Live display on a terminal, periodic plain lines otherwise, nothing when quiet."""

    def __init__(
        self,
        snapshot: Callable[[], StatsSnapshot],
        *,
        label: str,
        console: Console,
        quiet: bool,
        plain_interval: float = 10.0,
    ) -> None:
        self._snapshot = snapshot
        self._label = label
        self._console = console
        self._quiet = quiet
        self._plain_interval = plain_interval
        self._rates = _Rates()
        self._rates.update(time.monotonic(), 0, 0)  # the first report already has a rate

    async def run(self) -> None:
        """Report until cancelled."""
        if self._quiet:
            return
        if self._console.is_terminal:
            with Live(
                self._render(), console=self._console, refresh_per_second=4, transient=False
            ) as live:
                try:
                    while True:
                        await asyncio.sleep(0.25)
                        live.update(self._render())
                finally:
                    live.update(self._render())
        else:
            while True:
                await asyncio.sleep(self._plain_interval)
                self._console.print(self._plain_line(), highlight=False, soft_wrap=True)

    def _numbers(self) -> tuple[StatsSnapshot, float, float, str]:
        snap = self._snapshot()
        rate, byte_rate = self._rates.update(time.monotonic(), snap.finished_this_run, snap.bytes)
        eta = _duration(snap.remaining / rate) if rate > 0 and snap.remaining else "-"
        return snap, rate, byte_rate, eta

    def _render(self) -> Table:
        snap, rate, byte_rate, eta = self._numbers()
        total = max(snap.total, snap.finished, 1)
        grid = Table.grid(padding=(0, 1))
        grid.add_row(
            Text(self._label, style="bold cyan"),
            ProgressBar(total=total, completed=snap.finished, width=40),
            Text(f"{snap.finished:,}/{snap.total:,}"),
            Text(f"{100 * snap.finished / total:5.1f}%"),
            Text(f"ETA {eta}", style="dim"),
        )
        lines = Group(
            grid,
            Text(
                f"{rate:,.0f} pages/s · {_human_bytes(byte_rate)}/s · in flight "
                f"{snap.in_flight:,} · queued {snap.queued:,} · retries {snap.retries:,}",
                style="green",
            ),
            Text(_errors_text(snap), style="dim"),
        )
        outer = Table.grid()
        outer.add_row(lines)
        return outer

    def _plain_line(self) -> str:
        snap, rate, byte_rate, eta = self._numbers()
        total = max(snap.total, 1)
        return (
            f"shoal: {self._label}: {snap.finished:,}/{snap.total:,} "
            f"({100 * snap.finished / total:.1f}%) · {rate:,.0f} pages/s · "
            f"{_human_bytes(byte_rate)}/s · in flight {snap.in_flight:,} · "
            f"retries {snap.retries:,} · {_errors_text(snap)} · ETA {eta}"
        )


def render_summary(
    summary: JobSummary, *, job: str, this_run: StatsSnapshot | None, recrawl: bool = False
) -> Table:
    """The end-of-run summary: counts by outcome, latency, throughput; with ``recrawl``,
    what this run found changed since the run before (``shoal.core.revisit``)."""
    counts = summary.counts
    table = Table(title=f"job {job}", show_header=False, title_justify="left", box=None)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("requests", f"{counts.total:,}")
    errors, skipped = _split_skipped(summary.by_error_kind)
    table.add_row("done", f"{counts.done:,}")
    table.add_row("failed", f"{counts.failed - sum(skipped.values()):,}")
    if skipped:
        table.add_row("skipped", ", ".join(f"{k} {v:,}" for k, v in _by_count(skipped)))
    if counts.open:
        table.add_row("not finished", f"{counts.open:,}")
    if summary.by_status_class:
        table.add_row(
            "by status",
            ", ".join(f"{k} {v:,}" for k, v in sorted(summary.by_status_class.items())),
        )
    if errors:
        table.add_row("by error kind", ", ".join(f"{k} {v:,}" for k, v in _by_count(errors)))
    if summary.rejected:
        table.add_row(
            "not followed",
            ", ".join(f"{k} {v:,}" for k, v in _by_count(summary.rejected)),
        )
    if recrawl and this_run is not None:
        table.add_row("recrawl", recrawl_line(this_run))
    table.add_row("bytes", _human_bytes(summary.bytes))
    if summary.p50_ms is not None:
        p95 = summary.p95_ms if summary.p95_ms is not None else float("nan")
        table.add_row("latency", f"p50 {summary.p50_ms:,.1f} ms · p95 {p95:,.1f} ms")
    if this_run is not None and this_run.elapsed > 0:
        rate = this_run.finished_this_run / this_run.elapsed
        table.add_row(
            "this run",
            f"{this_run.finished_this_run:,} in {this_run.elapsed:,.1f} s "
            f"({rate:,.0f} pages/s), {this_run.retries:,} retries"
            + (
                f", HTTP in {this_run.fetch_processes} fetch processes"
                if this_run.fetch_processes
                else ""
            )
            + (
                f", a failing proxy taken out {this_run.proxies_taken_out:,} times"
                if this_run.proxies_taken_out
                else ""
            ),
        )
    return table


def recrawl_line(this_run: StatsSnapshot) -> str:
    """``3 unchanged, 2 changed, 1 new, 0 gone``: a recrawl's pages by what it found; new
    ones are those the job did not have (found by following links, or added input)."""
    changes = this_run.changes
    new = this_run.finished_this_run - sum(changes.values())
    return (
        f"{changes.get('unchanged', 0):,} unchanged, {changes.get('changed', 0):,} changed, "
        f"{new:,} new, {changes.get('gone', 0):,} gone"
    )
