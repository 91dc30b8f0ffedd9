"""What a ``JobSpec`` asks of the engine before a run starts: a crawl's link processor
and robots policy (``plan_for``), the requests its seeds make (``seed_requests``,
``sought_sitemaps``), and the changes made to each request before it is sent
(``chained``, ``conditional_headers``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from shoal.core.jobspec import JobSpec
from shoal.core.model import NewRequest, Request
from shoal.core.robots import RobotsPolicy, ua_token
from shoal.core.scope import Scope
from shoal.core.secrets import basic_authorization
from shoal.core.traps import TrapLimits
from shoal.engine.frontier.robots import origin_of
from shoal.engine.pages.links import LinkProcessor

__all__ = ["Plan", "chained", "conditional_headers", "plan_for", "seed_requests", "sought_sitemaps"]


def chained(
    first: Callable[[Request], Request] | None, then: Callable[[Request], Request] | None
) -> Callable[[Request], Request] | None:
    """Two ``before_fetch`` changes as one: the spec's headers, then the caller's. Each
    leaves the headers already on a request alone: a request's own win over both, and the
    spec's over the caller's."""
    if first is None or then is None:
        return first or then
    return lambda request: then(first(request))


def conditional_headers(request: Request) -> Request:
    """A recrawl's request asks the server whether the page changed: its result's
    validators go out as ``If-None-Match`` and ``If-Modified-Since``."""
    revisit = request.revisit
    if revisit is None:
        return request
    headers = revisit.headers()
    if not headers:
        return request
    return replace(request, headers=request.headers + headers)


def seed_requests(spec: JobSpec) -> list[NewRequest]:
    """What a crawl admits from its spec: the seeds, and each seed origin's /sitemap.xml
    when it reads sitemaps."""
    credentials = dict(spec.seed_credentials)
    requests = [NewRequest.for_url(url) for url in spec.seeds]
    requests = [
        replace(r, headers=(basic_authorization(credentials[r.url]),))
        if r.url in credentials
        else r
        for r in requests
    ]
    requests += [NewRequest.for_url(url) for url in sought_sitemaps(spec)]
    return requests


def sought_sitemaps(spec: JobSpec) -> list[str]:
    """The /sitemap.xml of each seed's origin, when the crawl reads sitemaps (and it is not
    a seed itself): looked for, so recorded as ``sitemap_missing`` when not there."""
    if not spec.sitemaps:
        return []
    seeds = set(spec.seeds)
    origins = dict.fromkeys(origin_of(url) for url in spec.seeds)
    return [url for origin in origins if (url := origin + "/sitemap.xml") not in seeds]


@dataclass(frozen=True, slots=True)
class Plan:
    processor: LinkProcessor | None = None
    robots: RobotsPolicy | None = None


def plan_for(spec: JobSpec) -> Plan:
    """The engine parts a spec asks for: a crawl's link processor and robots policy."""
    if spec.kind != "crawl":
        return Plan()
    config = spec.config
    robots = (
        RobotsPolicy(
            user_agent_token=ua_token(config.user_agent),
            max_crawl_delay=config.politeness.max_crawl_delay,
        )
        if spec.robots
        else None
    )
    processor = LinkProcessor(
        scope=Scope(
            mode=spec.scope,
            seeds=spec.seeds,
            include=spec.include,
            exclude=spec.exclude,
            max_depth=spec.depth,
        ),
        traps=TrapLimits(),
        strip_params=spec.strip_query_params,
        sort_query=spec.sort_query,
        robots_token=robots.user_agent_token if robots is not None else "shoal",
        max_redirects=config.limits.max_redirects,
    )
    return Plan(processor=processor, robots=robots)
