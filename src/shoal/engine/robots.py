"""The robots.txt gate: one fetch per origin, cached in memory and in the store.

The rules themselves are decided in ``shoal.core.robots``; this module only
fetches ``/robots.txt`` (following up to five redirects, reading at most the
policy's cap), shares one in-flight fetch between every request that needs
it, and keeps the answers: a bounded in-memory LRU in front of the store's
per-job cache, so that every worker of a job agrees and a resumed crawl
does not ask again before the answer expires.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import aiohttp

from shoal.core.errors import StoreUnavailable
from shoal.core.model import Request
from shoal.core.robots import RobotsPolicy, RobotsRules, rules_from_response
from shoal.store.base import Store

__all__ = ["RobotsGate", "origin_of"]

log = logging.getLogger("shoal.engine.robots")

_MAX_REDIRECTS = 5  # RFC 9309 §2.3.1.2


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an absolute canonical URL: what one robots.txt covers."""
    scheme_end = url.index("://") + 3
    path_start = url.find("/", scheme_end)
    return url if path_start < 0 else url[:path_start]


class RobotsGate:
    def __init__(
        self,
        store: Store,
        job_id: int,
        session: aiohttp.ClientSession,
        policy: RobotsPolicy,
        *,
        on_rules: Callable[[str, RobotsRules], None],
        memory: int = 10_000,
    ) -> None:
        self._store = store
        self._job_id = job_id
        self._session = session
        self._policy = policy
        self._on_rules = on_rules
        self._memory = memory
        self._known: OrderedDict[str, RobotsRules] = OrderedDict()
        self._loading: dict[str, asyncio.Future[RobotsRules]] = {}

    def cached(self, request: Request) -> RobotsRules | None:
        """The rules for the request's origin if known and fresh (no await)."""
        origin = origin_of(request.url)
        rules = self._known.get(origin)
        if rules is None:
            return None
        if rules.expired(time.time()):
            del self._known[origin]
            return None
        self._known.move_to_end(origin)
        return rules

    async def load(self, request: Request) -> RobotsRules:
        """The rules for the request's origin: from the store, or fetched once."""
        origin = origin_of(request.url)
        pending = self._loading.get(origin)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[RobotsRules] = asyncio.get_running_loop().create_future()
        self._loading[origin] = future
        try:
            rules = await self._load(origin)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        finally:
            del self._loading[origin]
        future.set_result(rules)
        self._remember(origin, rules)
        self._on_rules(request.host, rules)
        return rules

    async def _load(self, origin: str) -> RobotsRules:
        now = time.time()
        try:
            stored = await self._store.get_robots(self._job_id, origin, now=now)
        except StoreUnavailable as exc:
            # The shared cache is a shortcut: without it, fetch robots.txt ourselves.
            log.debug("robots cache unavailable for %s: %s", origin, exc)
            stored = None
        if stored is not None:
            try:
                return RobotsRules.from_json(json.loads(stored), policy=self._policy)
            except ValueError:
                log.debug("ignoring an unreadable cached robots.txt answer for %s", origin)
        status, body = await self._fetch(origin)
        rules = rules_from_response(self._policy, status=status, body=body, fetched_at=time.time())
        try:
            await self._store.put_robots(
                self._job_id, origin, json.dumps(rules.to_json()), expires=rules.expires_at
            )
        except StoreUnavailable as exc:
            log.debug("could not share robots.txt rules for %s: %s", origin, exc)
        return rules

    async def _fetch(self, origin: str) -> tuple[int | None, bytes | None]:
        cap = self._policy.max_bytes
        try:
            async with self._session.get(
                origin + "/robots.txt", allow_redirects=True, max_redirects=_MAX_REDIRECTS
            ) as response:
                body = await response.content.read(cap + 1)
                chunks = [body]
                size = len(body)
                while body and size <= cap:
                    body = await response.content.read(cap + 1 - size)
                    chunks.append(body)
                    size += len(body)
                return response.status, b"".join(chunks)[:cap]
        except asyncio.CancelledError:
            raise
        except aiohttp.TooManyRedirects:
            return 310, None  # a final 3xx: RFC 9309 treats it as unavailable, allow all
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            log.debug("robots.txt of %s unreachable: %s", origin, exc)
            return None, None

    def _remember(self, origin: str, rules: RobotsRules) -> None:
        self._known[origin] = rules
        self._known.move_to_end(origin)
        while len(self._known) > self._memory:
            self._known.popitem(last=False)
