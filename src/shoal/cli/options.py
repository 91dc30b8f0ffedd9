"""Command-line options shared by ``fetch`` and ``crawl``, and their translation into
the frozen config objects the engine takes.

Precedence, highest first: flag, ``SHOAL_*`` environment variable, TOML file
given with ``--config``, built-in default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click

from shoal.cli.observe import observe_options
from shoal.cli.params import (
    ByteSize,
    DurationParam,
    ExtractRuleParam,
    F,
    RateParam,
    env_option,
    with_options,
)
from shoal.cli.requestopts import build_proxies, cookie_options, header_options, proxy_options
from shoal.core.config import (
    AUTO_PYREQWEST_CONCURRENCY,
    DEFAULT_USER_AGENT,
    HTTP_CLIENTS,
    CrawlConfig,
    Limits,
    Politeness,
    RetryPolicy,
    Timeouts,
)
from shoal.core.errors import ConfigError
from shoal.core.extract import ExtractRules
from shoal.core.revisit import DEFAULT_KEEP_HISTORY, MAX_KEEP_HISTORY, Recrawl
from shoal.engine.fetch.pool import AUTO_START_ROWS
from shoal.export.writers import SUFFIXES_TEXT

__all__ = [
    "build_config",
    "build_recrawl",
    "recrawl_options",
    "csv_escape_option",
    "read_store_option",
    "run_options",
    "store_option",
]


def read_store_option(func: F) -> F:
    """``--store`` for commands that only read an existing store."""
    return env_option(
        "--store",
        env="STORE",
        default="shoal.db",
        show_default=True,
        metavar="PATH|URL",
        help="The store to read.",
    )(func)


def store_option(func: F) -> F:
    return env_option(
        "--store",
        env="STORE",
        default="shoal.db",
        show_default=True,
        metavar="PATH|URL",
        help="SQLite file (created if missing); one store holds many jobs.",
    )(func)


def csv_escape_option(func: F) -> F:
    """``--no-csv-escape``: CSV cells as they are, formulas included."""
    return env_option(
        "--csv-escape/--no-csv-escape",
        env="CSV_ESCAPE",
        default=True,
        show_default=True,
        help="In CSV output, prefix cells starting with = + - @ tab or CR with ' so that "
        "spreadsheets do not run them as formulas.",
    )(func)


def run_options(*, per_host: int, delay: float) -> Callable[[F], F]:
    """The options every job-running command takes; defaults differ by command."""

    def decorate(func: F) -> F:
        options = [
            store_option,
            env_option(
                "--job",
                env="JOB",
                metavar="NAME",
                help="Job name. Default: the input file's name (fetch) or the first seed's "
                "host (crawl), with -2, -3... added when a job of that name holds other "
                "settings. Running the same job again resumes it.",
            ),
            env_option(
                "--fresh",
                env="FRESH",
                is_flag=True,
                help="Discard what the job recorded and start it over.",
            ),
            env_option(
                "--refetch",
                env="REFETCH",
                type=click.Choice(["failed", "all"]),
                default=None,
                help="Fetch again what the job finished: failed (network errors and 5xx) or all.",
            ),
            *_RECRAWL_OPTIONS,
            env_option(
                "-o",
                "--output",
                env="OUTPUT",
                metavar="FILE",
                help="Write the job's whole result set to FILE (earlier runs of the job "
                "included, each URL once), as results land; the suffix chooses the format: "
                f"{SUFFIXES_TEXT} (WARC keeps bodies); - for standard output (JSONL).",
            ),
            env_option(
                "--format",
                "output_format",
                env="FORMAT",
                type=click.Choice(["jsonl", "json", "csv", "parquet", "warc"]),
                default=None,
                help="Format of -o when its suffix does not say (default: from the suffix).",
            ),
            csv_escape_option,
            env_option(
                "--concurrency",
                env="CONCURRENCY",
                type=click.IntRange(1, 100_000),
                default=256,
                show_default=True,
                help="Requests in flight at once, in total.",
            ),
            env_option(
                "--processes",
                env="PROCESSES",
                type=click.IntRange(0, 64),
                default=None,
                help="Child processes doing the HTTP (and a crawl's link reading), to "
                "use more cores. [default: one per core, at most 4 (none on one core), "
                f"once a run has {AUTO_START_ROWS:,} URLs; 0 = all in this process]",
            ),
            env_option(
                "--per-host",
                env="PER_HOST",
                type=click.IntRange(1, 10_000),
                default=per_host,
                show_default=True,
                help="Requests in flight per host.",
            ),
            env_option(
                "--delay",
                env="DELAY",
                type=click.FloatRange(0, 3600),
                default=delay,
                show_default=True,
                help="Seconds between request starts to one host.",
            ),
            env_option(
                "--rate",
                env="RATE",
                type=RateParam(),
                default=None,
                help="At most this many request starts per second over all hosts (10/s, "
                "600/m), besides --per-host and --delay; per command or worker.",
            ),
            env_option(
                "--timeout",
                env="TIMEOUT",
                type=click.FloatRange(0, min_open=True),
                default=60.0,
                show_default=True,
                help="Total seconds for one attempt.",
            ),
            env_option(
                "--connect-timeout",
                env="CONNECT_TIMEOUT",
                type=click.FloatRange(0, min_open=True),
                default=10.0,
                show_default=True,
                help="Seconds to resolve and connect.",
            ),
            env_option(
                "--read-timeout",
                env="READ_TIMEOUT",
                type=click.FloatRange(0, min_open=True),
                default=30.0,
                show_default=True,
                help="Seconds to wait for each read.",
            ),
            env_option(
                "--retries",
                env="RETRIES",
                type=click.IntRange(0, 100),
                default=3,
                show_default=True,
                help="Retries for connection errors, timeouts, 429 and 5xx "
                "(exponential backoff, full jitter; Retry-After honoured).",
            ),
            env_option(
                "--max-bytes",
                env="MAX_BYTES",
                type=ByteSize(),
                default="10MiB",
                show_default=True,
                help="Body cap; larger bodies are recorded as too_large.",
            ),
            env_option(
                "--max-redirects",
                env="MAX_REDIRECTS",
                type=click.IntRange(0, 100),
                default=10,
                show_default=True,
                help="Redirects to follow per request.",
            ),
            env_option(
                "--save-bodies",
                env="SAVE_BODIES",
                is_flag=True,
                help="Keep response bodies in the store (zstd-compressed, deduplicated).",
            ),
            env_option(
                "--user-agent",
                env="USER_AGENT",
                default=DEFAULT_USER_AGENT,
                show_default=True,
                metavar="UA",
                help="User-Agent header sent.",
            ),
            env_option(
                "--insecure", env="INSECURE", is_flag=True, help="Do not verify TLS certificates."
            ),
            env_option(
                "--http",
                env="HTTP",
                type=click.Choice(HTTP_CLIENTS),
                default=HTTP_CLIENTS[0],
                show_default=True,
                help="HTTP client doing the requests: aiohttp, pyreqwest (Rust's "
                "reqwest and hyper; HTTP/2 with --http2), or auto: pyreqwest up to "
                f"{AUTO_PYREQWEST_CONCURRENCY} connections without a proxy, else aiohttp.",
            ),
            env_option(
                "--http2/--no-http2",
                env="HTTP2",
                default=False,
                show_default=True,
                help="Offer HTTP/2 to HTTPS servers (ALPN); needs pyreqwest (which auto then is).",
            ),
            env_option(
                "--extract",
                env="EXTRACT",
                type=ExtractRuleParam(),
                multiple=True,
                help="Record a field per page (repeatable): 'title=css:title::text', "
                "'links=css:a::attr(href)[]', 'sku=re:SKU-(\\d+)', 'ids=json:data.items[].id'; "
                '[] collects every match. TOML: an [extract] table of name = "rule".',
            ),
            env_option(
                "--emit",
                env="EMIT",
                metavar="AMQP_URL",
                default=None,
                help="Also publish every result as it lands to RabbitMQ (amqp://user:pass@host/"
                "vhost): JSON on the topic exchange shoal.results, routing key the job name.",
            ),
            env_option(
                "-q",
                "--quiet",
                env="QUIET",
                is_flag=True,
                help="No progress display; errors and the exit code only.",
            ),
        ]
        func = with_options(func, options)
        return header_options(cookie_options(proxy_options(observe_options(func))))

    return decorate


_RECRAWL_OPTIONS = (
    env_option(
        "--recrawl",
        env="RECRAWL",
        is_flag=True,
        help="Fetch the job's finished URLs again, asking each server whether the page "
        "changed (If-None-Match, If-Modified-Since): a 304 keeps the result; a changed "
        "page replaces it, the old one kept in the job's history; new links are followed.",
    ),
    env_option(
        "--revisit-after",
        env="REVISIT_AFTER",
        type=DurationParam(),
        default=None,
        help="With --recrawl (which it implies): only URLs fetched longer ago than this "
        "(30m, 12h, 1d, 2w).",
    ),
    env_option(
        "--keep-history",
        env="KEEP_HISTORY",
        type=click.IntRange(0, MAX_KEEP_HISTORY),
        default=DEFAULT_KEEP_HISTORY,
        show_default=True,
        help="Earlier results a recrawl keeps per URL when a page changes.",
    ),
)


def recrawl_options(func: F) -> F:
    """``--recrawl``, ``--revisit-after`` and ``--keep-history``."""
    return with_options(func, _RECRAWL_OPTIONS)


def build_recrawl(params: Mapping[str, Any]) -> Recrawl | None:
    """The run's recrawl from ``--recrawl`` / ``--revisit-after`` (None: not one); one
    that cannot go with ``--fresh`` or ``--refetch`` is a usage error."""
    after = params.get("revisit_after")
    if not params.get("recrawl") and after is None:
        return None
    for name in ("fresh", "refetch"):
        if params.get(name):
            raise click.UsageError(
                f"--recrawl asks again what the job has; it does not go with --{name}"
            )
    return Recrawl(older_than=after)


def build_config(params: dict[str, Any], *, follow_links: bool) -> CrawlConfig:
    """Turn parsed CLI parameters into the engine's config objects."""
    try:
        return CrawlConfig(
            limits=Limits(
                concurrency=params["concurrency"],
                max_bytes=params["max_bytes"],
                max_redirects=params["max_redirects"],
                processes=params.get("processes"),
                rate=params.get("rate"),
            ),
            timeouts=Timeouts(
                total=params["timeout"],
                connect=params["connect_timeout"],
                read=params["read_timeout"],
            ),
            politeness=Politeness(per_host=params["per_host"], delay=params["delay"]),
            retry=RetryPolicy(retries=params["retries"]),
            user_agent=params["user_agent"],
            save_bodies=params["save_bodies"],
            follow_links=follow_links,
            verify_tls=not params["insecure"],
            http=params.get("http") or HTTP_CLIENTS[0],
            http2=bool(params.get("http2")),
            extract=ExtractRules.of(params["extract"]) if params.get("extract") else None,
            proxies=build_proxies(params),
            proxy_env=not params.get("no_proxy_env"),
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
