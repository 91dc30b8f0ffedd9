"""``shoal`` with field extraction called on the event loop instead of in worker threads.

For bench/extract.py only: it shows what running extraction off the loop is worth.
Takes the arguments of ``shoal``.
"""

from __future__ import annotations

from shoal.cli import main
from shoal.core.model import FetchResult
from shoal.engine.pages.fields import FieldExtractor


async def _inline(self: FieldExtractor, result: FetchResult, body: bytes) -> None:
    status = result.status
    if status is None or not 200 <= status < 300 or result.error_kind is not None:
        return
    extraction = self._extract(result, body)
    result.fields = {**(result.fields or {}), **extraction.fields}
    result.encoding = extraction.encoding


FieldExtractor.__call__ = _inline  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
