"""A job's hosts for a person to look at (``Store.hosts``): one query, both backends."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from shoal.core.lifecycle import State
from shoal.core.model import HostView

__all__ = ["hosts_from_rows", "hosts_query", "robots_query"]


def hosts_query(prefix: str, job: str, limit: str) -> str:
    """The query over ``{prefix}requests`` and ``{prefix}hosts``, with the placeholders
    the backend uses for the job id and the limit."""
    return (
        "SELECT r.host,"
        f" SUM(CASE WHEN r.state = {int(State.DONE)} THEN 1 ELSE 0 END),"
        f" SUM(CASE WHEN r.state = {int(State.FAILED)} THEN 1 ELSE 0 END),"
        f" SUM(CASE WHEN r.state IN ({int(State.PENDING)}, {int(State.RETRY_WAIT)})"
        " THEN 1 ELSE 0 END),"
        f" SUM(CASE WHEN r.state = {int(State.LEASED)} THEN 1 ELSE 0 END),"
        " MAX(h.gap), MAX(h.owner)"
        f" FROM {prefix}requests r LEFT JOIN {prefix}hosts h"
        " ON h.job_id = r.job_id AND h.host = r.host"
        f" WHERE r.job_id = {job} GROUP BY r.host ORDER BY COUNT(*) DESC, r.host LIMIT {limit}"
    )


def robots_query(prefix: str, job: str) -> str:
    """The origins (``scheme://host:port``) whose robots.txt the job has cached: robots
    data is kept per origin, beside the per-host rows."""
    return (
        f"SELECT host FROM {prefix}hosts WHERE job_id = {job}"
        " AND robots IS NOT NULL AND host LIKE '%://%'"
    )


def hosts_from_rows(
    rows: Iterable[Sequence[object]], robots_origins: Iterable[Sequence[object]]
) -> list[HostView]:
    cached = {_host_of(str(row[0])) for row in robots_origins}
    return [
        HostView(
            host=str(row[0]),
            done=int(row[1] or 0),  # type: ignore[call-overload]
            failed=int(row[2] or 0),  # type: ignore[call-overload]
            waiting=int(row[3] or 0),  # type: ignore[call-overload]
            leased=int(row[4] or 0),  # type: ignore[call-overload]
            delay=float(row[5] or 0.0),  # type: ignore[arg-type]
            robots_cached=str(row[0]) in cached,
            owner=str(row[6]) if row[6] is not None else None,
        )
        for row in rows
    ]


def _host_of(origin: str) -> str:
    return (urlsplit(origin).hostname or "").lower()
