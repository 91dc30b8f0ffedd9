"""Store patience: a run outlasts a store that is briefly unavailable (a database
restarting, a network blip) by asking again with backoff, up to ``STORE_PATIENCE``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from shoal.core.errors import StoreUnavailable
from shoal.core.model import Completion
from shoal.core.ports import FrontierPort

__all__ = ["STORE_PATIENCE", "complete_patiently", "patiently"]

log = logging.getLogger("shoal.engine.fleet.patience")

T = TypeVar("T")

STORE_PATIENCE = 300.0
"""Seconds a run keeps retrying a store that is unavailable before it gives up."""


async def patiently(call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, again with backoff while the store is unavailable (a database
    restarting, a network blip), for up to ``STORE_PATIENCE`` seconds in all."""
    delay = 0.25
    waited = 0.0
    while True:
        try:
            return await call()
        except StoreUnavailable as exc:
            if waited >= STORE_PATIENCE:
                raise
            log.warning("store unavailable (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 8.0)


async def complete_patiently(
    store: FrontierPort, job_id: int, owner: str, batch: Completion
) -> int:
    """Write ``batch`` (patiently); the number of new rows it admitted."""
    admitted = await patiently(lambda: store.complete(job_id, owner, batch, now=time.time()))
    return admitted or 0
