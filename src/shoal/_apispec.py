"""What the Python API's keyword arguments become, before any I/O: a checked ``JobSpec``
(and, for a fetch, its parsed requests), a recrawl, extraction rules.

``shoal.api`` calls these; a bad argument raises ``ConfigError`` or ``InputError``
here, before a store is opened.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Literal, TypeAlias

from shoal.core.config import CrawlConfig
from shoal.core.errors import ConfigError, InputError
from shoal.core.extract import ExtractRules
from shoal.core.inputs import input_digest, parse_line
from shoal.core.jobspec import JobSpec
from shoal.core.model import NewRequest
from shoal.core.revisit import Recrawl, parse_duration

__all__ = [
    "Extract",
    "FetchPlan",
    "ScopeMode",
    "crawl_spec",
    "extract_rules",
    "fetch_plan",
    "recrawl_of",
    "with_history",
]

ScopeMode = Literal["host", "domain", "prefix", "any"]


Extract: TypeAlias = ExtractRules | Mapping[str, str] | Iterable[str]
"""Extraction rules: ``{"title": "css:title::text"}``, ``["title=css:title::text"]``, or
an ``ExtractRules``."""


@dataclasses.dataclass(frozen=True)
class FetchPlan:
    """A fetch job checked and built, before any I/O."""

    spec: JobSpec
    requests: list[NewRequest]


def recrawl_of(recrawl: bool, revisit_after: float | str | None) -> Recrawl | None:
    """The run's recrawl (None: not one); ``revisit_after`` implies one."""
    if not isinstance(recrawl, bool):
        raise ConfigError(f"recrawl must be true or false, got {recrawl!r}")
    if not recrawl and revisit_after is None:
        return None
    older = parse_duration(revisit_after) if isinstance(revisit_after, str) else revisit_after
    return Recrawl(older_than=older)


def with_history(spec: JobSpec, keep_history: int | None) -> JobSpec:
    """``spec`` keeping ``keep_history`` past results per URL (None: as it is)."""
    return spec if keep_history is None else dataclasses.replace(spec, keep_history=keep_history)


def extract_rules(extract: Extract | None) -> ExtractRules | None:
    """The rules ``extract`` names, checked."""
    if extract is None or isinstance(extract, ExtractRules):
        return extract
    return ExtractRules.of(extract)


def fetch_plan(
    urls: Iterable[str],
    concurrency: int | None,
    per_host: int | None,
    config: CrawlConfig | None,
    extract: Extract | None,
    bodies: bool,
) -> FetchPlan:
    items = list(urls) if not isinstance(urls, str) else [urls]
    requests = _parse_urls(items)
    run_config = _configure(
        config or CrawlConfig(),
        concurrency=concurrency,
        per_host=per_host,
        follow_links=False,
        extract=extract_rules(extract),
        bodies=bodies,
    )
    digest = input_digest(item + "\n" for item in items if isinstance(item, str))
    spec = JobSpec.fetch(input=None, input_digest=digest, config=run_config)
    return FetchPlan(spec, requests)


def crawl_spec(
    seeds: Iterable[str],
    depth: int | None,
    per_host: int | None,
    scope: ScopeMode,
    obey_robots: bool,
    config: CrawlConfig | None,
    max_pages: int | None,
    extract: Extract | None,
    bodies: bool,
    *,
    concurrency: int | None = None,
) -> JobSpec:
    if per_host is None and config is None:
        per_host = 2
    run_config = _configure(
        config or CrawlConfig(),
        concurrency=concurrency,
        per_host=per_host,
        follow_links=True,
        extract=extract_rules(extract),
        bodies=bodies,
    )
    return JobSpec.crawl(
        list(seeds) if not isinstance(seeds, str) else [seeds],
        config=run_config,
        scope=scope,
        depth=depth,
        max_pages=max_pages,
        robots=obey_robots,
    )


def _parse_urls(urls: Iterable[str]) -> list[NewRequest]:
    requests: list[NewRequest] = []
    for line_no, url in enumerate(urls, start=1):
        if not isinstance(url, str):
            raise InputError(f"expected a str, got {type(url).__name__}", line_no=line_no)
        request = parse_line(url, line_no)
        if request is not None:
            requests.append(request)
    return requests


def _configure(
    config: CrawlConfig,
    *,
    concurrency: int | None,
    per_host: int | None,
    follow_links: bool,
    extract: ExtractRules | None,
    bodies: bool,
) -> CrawlConfig:
    limits, politeness = config.limits, config.politeness
    if concurrency is not None:
        limits = dataclasses.replace(limits, concurrency=concurrency)
    if per_host is not None:
        politeness = dataclasses.replace(politeness, per_host=per_host)
    return dataclasses.replace(
        config,
        limits=limits,
        politeness=politeness,
        follow_links=follow_links,
        extract=extract if extract is not None else config.extract,
        save_bodies=config.save_bodies or bodies,
    )
