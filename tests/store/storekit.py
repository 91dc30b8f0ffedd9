"""Small builders shared by the store tests: requests, results and a fixed clock."""

from __future__ import annotations

from shoal.core.model import FetchResult, NewRequest, Request
from shoal.core.ports import Store

T0 = 1_000_000.0
"""The tests' clock starts here; every ``now`` is passed explicitly."""


def new_request(
    key: str | int, *, depth: int = 0, host: str = "a.test", **fields: object
) -> NewRequest:
    url = f"https://{host}/{key}"
    return NewRequest(
        url=url,
        fingerprint=url.encode(),
        host=host,
        depth=depth,
        **fields,  # type: ignore[arg-type]
    )


def new_requests(
    n: int, *, start: int = 0, depth: int = 0, host: str = "a.test"
) -> list[NewRequest]:
    return [new_request(i, depth=depth, host=host) for i in range(start, start + n)]


def ok(request: Request, *, status: int | None = 200, **fields: object) -> FetchResult:
    """The result of fetching ``request``: a response with ``status`` (None: failed)."""
    values: dict[str, object] = {"attempts": request.attempts + 1, "fetched_at": T0}
    values.update(fields)
    if status is None and "error_kind" not in values:
        values["error_kind"] = "connect_error"
    return FetchResult(
        request_id=request.id,
        url=request.url,
        status=status,
        **values,  # type: ignore[arg-type]
    )


async def all_results(
    store: Store, job_id: int, *, batch_size: int = 1000, with_bodies: bool = False
) -> list[FetchResult]:
    results: list[FetchResult] = []
    async for batch in store.iter_results(job_id, batch_size=batch_size, with_bodies=with_bodies):
        results.extend(batch)
    return results


async def lease_all(
    store: Store, job_id: int, owner: str = "w1", *, now: float = T0, ttl: float = 60.0
) -> list[Request]:
    return await store.lease(job_id, owner, limit=10_000, now=now, ttl=ttl)
