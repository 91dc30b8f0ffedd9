"""``shoal crawl``: follow links from seeds, within a scope, politely, resumably."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import click

from shoal.cli.jobrun import AdmitContext, AdmitReport, JobRequest
from shoal.cli.options import EXIT_CODES, build_config, run_options
from shoal.core.config import CrawlConfig
from shoal.core.errors import ConfigError, InputError
from shoal.core.hosts import AutoThrottle
from shoal.core.model import JobInfo, NewRequest, job_name
from shoal.core.robots import RobotsPolicy, ua_token
from shoal.core.scope import Scope
from shoal.core.traps import TrapLimits
from shoal.core.urls import canonical_host, canonicalize
from shoal.engine.processor import LinkProcessor
from shoal.engine.robots import origin_of
from shoal.store.base import Store

__all__ = ["crawl", "crawl_plan"]

_MAX_COUNT = 2**63 - 1  # page limits are stored as SQLite (and PostgreSQL) 64-bit integers


def _seed_requests(seeds: list[str], *, sitemaps: bool) -> list[NewRequest]:
    requests = [NewRequest.for_url(url) for url in seeds]
    if sitemaps:
        origins = dict.fromkeys(origin_of(url) for url in seeds)
        requests += [NewRequest.for_url(origin + "/sitemap.xml") for origin in origins]
    return requests


def crawl_plan(record: Mapping[str, Any], config: CrawlConfig) -> dict[str, Any]:
    """The crawl's link processor, robots policy and pacing, from what the job records
    (``shoal crawl`` writes it; ``shoal worker`` reads it back to join the job)."""
    seeds = tuple(record.get("seeds") or ())
    strip = tuple(record.get("strip_query_params") or ())
    depth = record.get("depth")
    scope = Scope(
        mode=record.get("scope") or "host",
        seeds=seeds,
        include=tuple(record.get("include") or ()),
        exclude=tuple(record.get("exclude") or ()),
        max_depth=depth,
    )
    robots = (
        RobotsPolicy(
            user_agent_token=ua_token(config.user_agent),
            max_crawl_delay=config.politeness.max_crawl_delay,
        )
        if record.get("robots", True)
        else None
    )
    processor = LinkProcessor(
        scope=scope,
        traps=TrapLimits(),
        strip_params=strip,
        sort_query=bool(record.get("sort_query")),
        robots_token=robots.user_agent_token if robots is not None else "shoal",
    )
    return {
        "processor": processor,
        "robots": robots,
        "autothrottle": AutoThrottle() if record.get("autothrottle") else None,
        "sitemaps_from_robots": bool(record.get("sitemaps")),
        "strict_depth": depth is not None,
    }


@click.command(epilog=EXIT_CODES)
@click.argument("seeds", nargs=-1, required=True, metavar="SEED...")
@run_options(per_host=2, delay=0.0)
@click.option(
    "--depth",
    envvar="SHOAL_DEPTH",
    type=click.IntRange(0, 10_000),
    default=None,
    help="Follow links at most this many levels from a seed (default: no limit).",
)
@click.option(
    "--max-pages",
    envvar="SHOAL_MAX_PAGES",
    type=click.IntRange(1, _MAX_COUNT),
    default=None,
    help="Admit at most this many URLs in total (default: no limit).",
)
@click.option(
    "--max-pages-per-host",
    envvar="SHOAL_MAX_PAGES_PER_HOST",
    type=click.IntRange(1, _MAX_COUNT),
    default=None,
    help="Admit at most this many URLs per host.",
)
@click.option(
    "--scope",
    "scope_mode",
    envvar="SHOAL_SCOPE",
    type=click.Choice(["host", "domain", "prefix", "any"]),
    default="host",
    show_default=True,
    help="host: the seeds' hosts; domain: and their subdomains; prefix: under the "
    "seeds' directories; any: everything.",
)
@click.option(
    "--include",
    multiple=True,
    metavar="REGEX",
    help="Only follow URLs matching one of these (repeatable).",
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="REGEX",
    help="Never follow URLs matching one of these (repeatable; wins over --include).",
)
@click.option(
    "--ignore-robots",
    envvar="SHOAL_IGNORE_ROBOTS",
    is_flag=True,
    help="Do not fetch or obey robots.txt.",
)
@click.option(
    "--sitemaps",
    envvar="SHOAL_SITEMAPS",
    is_flag=True,
    help="Also read /sitemap.xml and robots.txt Sitemap: entries of the seeds' hosts.",
)
@click.option(
    "--autothrottle",
    envvar="SHOAL_AUTOTHROTTLE",
    is_flag=True,
    help="Adapt each host's delay to its latency; back off on 429/503.",
)
@click.option(
    "--strip-query-params",
    multiple=True,
    metavar="NAME",
    help="Drop these query parameters from links (globs like utm_* allowed).",
)
@click.option("--sort-query", is_flag=True, help="Sort query parameters of links.")
def crawl(seeds: tuple[str, ...], **params: Any) -> None:
    """Crawl from SEED URLs, following links within the scope.

    Every page in scope is fetched once, politely: at most --per-host
    requests in flight and --delay seconds (or robots.txt Crawl-delay)
    between request starts per host, robots.txt obeyed, hosts served
    round-robin, breadth-first by depth. Redirects are followed as links.

    Running the same command again resumes the crawl: nothing recorded is
    fetched again.
    """
    from shoal.cli import _check_output, _run_job

    strip = tuple(params["strip_query_params"])
    sort_query = bool(params["sort_query"])
    canonical_seeds: list[str] = []
    for seed in seeds:
        try:
            canonical_seeds.append(canonicalize(seed, strip_params=strip, sort_query=sort_query))
        except InputError as exc:
            raise click.BadParameter(f"{seed!r}: {exc}", param_hint="SEED") from None
    _check_output(params)
    config = build_config(params, follow_links=True)
    job = params["job"] or job_name(canonical_host(canonical_seeds[0]), default="crawl")
    record = {
        **config.as_record(),
        "seeds": canonical_seeds,
        "scope": params["scope_mode"],
        "depth": params["depth"],
        "include": list(params["include"]),
        "exclude": list(params["exclude"]),
        "strip_query_params": list(strip),
        "sort_query": sort_query,
        "sitemaps": bool(params["sitemaps"]),
        "autothrottle": bool(params["autothrottle"]),
        "max_pages": params["max_pages"],
        "max_pages_per_host": params["max_pages_per_host"],
        "robots": not params["ignore_robots"],
    }
    try:
        plan = crawl_plan(record, config)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    seeds_to_admit = _seed_requests(canonical_seeds, sitemaps=params["sitemaps"])

    async def admit(store: Store, info: JobInfo, context: AdmitContext) -> AdmitReport:
        await store.set_limits(
            info.id,
            max_pages=params["max_pages"],
            max_pages_per_host=params["max_pages_per_host"],
        )
        added = await store.add_requests(info.id, seeds_to_admit, now=time.time())
        context.on_admitted(added)
        return AdmitReport(lines=len(seeds), valid=len(seeds_to_admit), admitted=added)

    request = JobRequest(
        store=params["store"],
        job=job,
        mode="crawl",
        config=config,
        admit=admit,
        output=params["output"],
        quiet=params["quiet"],
        label=f"crawl {job}",
        config_record=record,
        **plan,
    )
    _run_job(request)
