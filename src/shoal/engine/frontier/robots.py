"""The robots.txt gate: one fetch per origin, cached in memory and in the store.

The rules themselves are decided in ``shoal.core.robots``; this module only
fetches ``/robots.txt`` (following up to five redirects, reading at most the
policy's cap, within ``ROBOTS_TIMEOUT``), shares one in-flight fetch between every
request that needs it, and keeps the answers: a bounded in-memory LRU in front of
the store's per-job cache, so that every worker of a job agrees and a resumed crawl
does not ask again before the answer expires.

A robots.txt that gets no response at all (refused, unresolvable, stalled, dripping)
is not an answer: it is a ``RobotsFailure`` with the error's kind, kept in memory
only. The host's requests are failed attempts with that error meanwhile, and after
``attempts`` such fetches the gate gives up on the origin for the rest of the run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from shoal.core.errors import StoreUnavailable
from shoal.core.model import Request
from shoal.core.ports import HostStatePort
from shoal.core.robots import RobotsPolicy, RobotsRules, rules_from_response
from shoal.engine.fetch.addressguard import is_blocked
from shoal.engine.fetch.failures import map_exception
from shoal.engine.fetch.spacing import marks_sends

__all__ = ["ROBOTS_ATTEMPTS", "ROBOTS_TIMEOUT", "RobotsFailure", "RobotsGate", "origin_of"]

log = logging.getLogger("shoal.engine.frontier.robots")

_MAX_REDIRECTS = 5  # RFC 9309 §2.3.1.2
ROBOTS_TIMEOUT = 15.0  # seconds one robots.txt fetch may take, at most (--timeout if less)
ROBOTS_ATTEMPTS = 2  # robots.txt fetches without a response before the origin is given up


@dataclass(frozen=True, slots=True, kw_only=True)
class RobotsFailure:
    """No response to an origin's robots.txt: why (an ``ErrorKind`` value), when to ask
    again (Unix time), and whether the gate gave up on it for this run."""

    error_kind: str
    error: str
    retry_at: float
    final: bool


def _backoff(failures: int) -> float:
    return min(30.0, 0.5 * 2.0 ** (failures - 1))


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an absolute canonical URL: what one robots.txt covers."""
    scheme_end = url.index("://") + 3
    path_start = url.find("/", scheme_end)
    return url if path_start < 0 else url[:path_start]


@dataclass(frozen=True, slots=True)
class _Fetched:
    status: int | None
    body: bytes | None


class RobotsGate:
    def __init__(
        self,
        store: HostStatePort,
        job_id: int,
        session: aiohttp.ClientSession,
        policy: RobotsPolicy,
        *,
        on_rules: Callable[[str, RobotsRules], None],
        memory: int = 10_000,
        attempts: int = ROBOTS_ATTEMPTS,
        timeout: float = ROBOTS_TIMEOUT,
        backoff: Callable[[int], float] = _backoff,
    ) -> None:
        self._store = store
        self._job_id = job_id
        self._session = session
        self.marks_send = marks_sends(session)
        """Whether this gate's requests end their sender's ``spacing.SENDING`` turn as they
        are written (``spacing.send_trace``)."""
        self._policy = policy
        self._on_rules = on_rules
        self._memory = memory
        self._known: OrderedDict[str, RobotsRules] = OrderedDict()
        self._loading: dict[str, asyncio.Future[RobotsRules | RobotsFailure]] = {}
        self._failed: dict[str, tuple[int, RobotsFailure]] = {}  # origin → (fetches, last)
        self._attempts = max(1, attempts)
        self._backoff = backoff
        base = session.timeout
        total = timeout if base.total is None else min(base.total, timeout)
        self._timeout = aiohttp.ClientTimeout(
            total=total,
            connect=base.connect,
            sock_connect=base.sock_connect,
            sock_read=base.sock_read,
        )

    def failure(self, request: Request) -> RobotsFailure | None:
        """Why the request's origin has no robots.txt answer, while that stands: until
        its ``retry_at``, or for good once the gate gave up on it (no await)."""
        entry = self._failed.get(origin_of(request.url))
        if entry is None:
            return None
        failure = entry[1]
        if failure.final or time.time() < failure.retry_at:
            return failure
        return None

    def waiting(self) -> list[str]:
        """The origins whose robots.txt is being fetched, or will be again."""
        waiting = dict.fromkeys(self._loading)
        for origin, (_, failure) in self._failed.items():
            if not failure.final:
                waiting[origin] = None
        return list(waiting)

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

    async def load(self, request: Request) -> RobotsRules | RobotsFailure:
        """The rules for the request's origin: from the store, or fetched once; or why
        robots.txt got no response."""
        origin = origin_of(request.url)
        pending = self._loading.get(origin)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[RobotsRules | RobotsFailure]
        future = asyncio.get_running_loop().create_future()
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
        if isinstance(rules, RobotsFailure):
            return rules
        self._failed.pop(origin, None)
        self._remember(origin, rules)
        self._on_rules(request.host, rules)
        return rules

    async def _load(self, origin: str) -> RobotsRules | RobotsFailure:
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
        fetched = await self._fetch(origin)
        if isinstance(fetched, tuple):
            kind, message = fetched
            fetches = self._failed.get(origin, (0, None))[0] + 1
            now = time.time()
            failure = RobotsFailure(
                error_kind=kind,
                error=message,
                retry_at=now + self._backoff(fetches),
                final=fetches >= self._attempts,
            )
            self._failed[origin] = (fetches, failure)
            log.debug("robots.txt of %s: no response (%s) %d times", origin, kind, fetches)
            return failure
        status, body = fetched.status, fetched.body
        rules = rules_from_response(self._policy, status=status, body=body, fetched_at=time.time())
        try:
            await self._store.put_robots(
                self._job_id, origin, json.dumps(rules.to_json()), expires=rules.expires_at
            )
        except StoreUnavailable as exc:
            log.debug("could not share robots.txt rules for %s: %s", origin, exc)
        return rules

    async def _fetch(self, origin: str) -> _Fetched | tuple[str, str]:
        """The response to robots.txt, or (error kind, message) when none came."""
        cap = self._policy.max_bytes
        try:
            async with self._session.get(
                origin + "/robots.txt",
                allow_redirects=True,
                max_redirects=_MAX_REDIRECTS,
                timeout=self._timeout,
            ) as response:
                body = await response.content.read(cap + 1)
                chunks = [body]
                size = len(body)
                while body and size <= cap:
                    body = await response.content.read(cap + 1 - size)
                    chunks.append(body)
                    size += len(body)
                return _Fetched(response.status, b"".join(chunks)[:cap])
        except asyncio.CancelledError:
            raise
        except aiohttp.TooManyRedirects:
            # A final 3xx: RFC 9309 treats it as unavailable, allow all.
            return _Fetched(310, None)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            if is_blocked(exc):
                # Not a server that is down: an address this run may not reach. Its pages
                # are refused the same way and recorded as blocked_address.
                return _Fetched(404, None)
            log.debug("robots.txt of %s unreachable: %s", origin, exc)
            kind, message = map_exception(exc)
            return str(kind), message

    def _remember(self, origin: str, rules: RobotsRules) -> None:
        self._known[origin] = rules
        self._known.move_to_end(origin)
        while len(self._known) > self._memory:
            self._known.popitem(last=False)
