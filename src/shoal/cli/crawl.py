"""``shoal crawl``: follow links from seeds, within a scope, politely, resumably."""

from __future__ import annotations

from typing import Any

import click

from shoal.cli.exits import EXIT_CODES
from shoal.cli.jobrun import JobRequest
from shoal.cli.observe import Observe
from shoal.cli.options import build_config, build_recrawl, run_options
from shoal.cli.requestopts import build_cookies, build_extra_headers
from shoal.core.errors import ConfigError, InputError
from shoal.core.jobspec import MAX_COUNT, MAX_DEPTH, JobSpec

__all__ = ["crawl"]


@click.command(epilog=EXIT_CODES)
@click.argument("seeds", nargs=-1, required=True, metavar="SEED...")
@run_options(per_host=2, delay=0.0)
@click.option(
    "--depth",
    envvar="SHOAL_DEPTH",
    type=click.IntRange(0, MAX_DEPTH),
    default=None,
    help="Follow links at most this many levels from a seed (default: no limit).",
)
@click.option(
    "--max-pages",
    envvar="SHOAL_MAX_PAGES",
    type=click.IntRange(1, MAX_COUNT),
    default=None,
    help="Admit at most this many URLs in total (default: no limit).",
)
@click.option(
    "--max-pages-per-host",
    envvar="SHOAL_MAX_PAGES_PER_HOST",
    type=click.IntRange(1, MAX_COUNT),
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

    observe = Observe.of(params)
    _check_output(params)
    config = build_config(params, follow_links=True)
    cookies = build_cookies(params)
    recrawl = build_recrawl(params)
    try:
        spec = JobSpec.crawl(
            [_with_scheme(seed) for seed in seeds],
            config=config,
            scope=params["scope_mode"],
            depth=params["depth"],
            include=tuple(params["include"]),
            exclude=tuple(params["exclude"]),
            strip_query_params=tuple(params["strip_query_params"]),
            sort_query=bool(params["sort_query"]),
            sitemaps=bool(params["sitemaps"]),
            autothrottle=bool(params["autothrottle"]),
            max_pages=params["max_pages"],
            max_pages_per_host=params["max_pages_per_host"],
            robots=not params["ignore_robots"],
            extra_headers=build_extra_headers(params),
            cookies=cookies is not None,
            keep_history=params["keep_history"],
        )
    except InputError as exc:
        raise click.BadParameter(exc.reason, param_hint="SEED") from None
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    request = JobRequest(
        store=params["store"],
        spec=spec,
        name=params["job"],
        command="crawl",
        output=params["output"],
        output_format=params["output_format"],
        csv_escape=params["csv_escape"],
        quiet=params["quiet"],
        fresh=params["fresh"],
        refetch=params["refetch"],
        recrawl=recrawl,
        emit=params["emit"],
        cookies=cookies,
        save_cookies=params["save_cookies"],
    )
    _run_job(request, observe)


def _with_scheme(seed: str) -> str:
    """A seed without a scheme (``example.org/docs``) is taken as http://, as wget does;
    said on standard error so that nobody is surprised."""
    text = seed.strip()
    if "://" in text or not text or text.startswith(("/", "#", "?")):
        return seed
    head = text.split("/", 1)[0]
    if ":" in head and not head.rsplit(":", 1)[1].isdigit():
        return seed  # mailto:x, javascript:..., a scheme without //
    click.echo(f"shoal: {seed!r} has no scheme; crawling http://{text}", err=True)
    return f"http://{text}"
