"""Command-line options shared by ``fetch`` and ``crawl``, and their translation into
the frozen config objects the engine takes.

Precedence, highest first: flag, ``SHOAL_*`` environment variable, TOML file
given with ``--config``, built-in default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from shoal.cli.observe import observe_options
from shoal.cli.params import ByteSize, DurationParam, ExtractRuleParam, HeaderParam, RateParam
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
from shoal.core.proxies import check_proxy, read_proxy_list
from shoal.core.revisit import DEFAULT_KEEP_HISTORY, MAX_KEEP_HISTORY, Recrawl
from shoal.core.sendheaders import ExtraHeaders
from shoal.engine.fetch.cookies import JobCookies
from shoal.engine.fetch.pool import AUTO_START_ROWS
from shoal.export.writers import SUFFIXES_TEXT

__all__ = [
    "build_config",
    "build_cookies",
    "build_extra_headers",
    "build_proxies",
    "build_recrawl",
    "recrawl_options",
    "csv_escape_option",
    "header_options",
    "read_store_option",
    "run_options",
    "store_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def _opt(*decls: str, env: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*decls, envvar=f"SHOAL_{env}", show_envvar=True, **kwargs)


def read_store_option(func: F) -> F:
    """``--store`` for commands that only read an existing store."""
    return _opt(
        "--store",
        env="STORE",
        default="shoal.db",
        show_default=True,
        metavar="PATH|URL",
        help="The store to read.",
    )(func)


def store_option(func: F) -> F:
    return _opt(
        "--store",
        env="STORE",
        default="shoal.db",
        show_default=True,
        metavar="PATH|URL",
        help="SQLite file (created if missing); one store holds many jobs.",
    )(func)


def csv_escape_option(func: F) -> F:
    """``--no-csv-escape``: CSV cells as they are, formulas included."""
    return _opt(
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
            _opt(
                "--job",
                env="JOB",
                metavar="NAME",
                help="Job name. Default: the input file's name (fetch) or the first seed's "
                "host (crawl), with -2, -3... added when a job of that name holds other "
                "settings. Running the same job again resumes it.",
            ),
            _opt(
                "--fresh",
                env="FRESH",
                is_flag=True,
                help="Discard what the job recorded and start it over.",
            ),
            _opt(
                "--refetch",
                env="REFETCH",
                type=click.Choice(["failed", "all"]),
                default=None,
                help="Fetch again what the job finished: failed (network errors and 5xx) or all.",
            ),
            *_RECRAWL_OPTIONS,
            _opt(
                "-o",
                "--output",
                env="OUTPUT",
                metavar="FILE",
                help="Write the job's whole result set to FILE (earlier runs of the job "
                "included, each URL once), as results land; the suffix chooses the format: "
                f"{SUFFIXES_TEXT} (WARC keeps bodies); - for standard output (JSONL).",
            ),
            _opt(
                "--format",
                "output_format",
                env="FORMAT",
                type=click.Choice(["jsonl", "json", "csv", "parquet", "warc"]),
                default=None,
                help="Format of -o when its suffix does not say (default: from the suffix).",
            ),
            csv_escape_option,
            _opt(
                "--concurrency",
                env="CONCURRENCY",
                type=click.IntRange(1, 100_000),
                default=256,
                show_default=True,
                help="Requests in flight at once, in total.",
            ),
            _opt(
                "--processes",
                env="PROCESSES",
                type=click.IntRange(0, 64),
                default=None,
                help="Child processes doing the HTTP (and a crawl's link reading), to "
                "use more cores. [default: one per core, at most 4 (none on one core), "
                f"once a run has {AUTO_START_ROWS:,} URLs; 0 = all in this process]",
            ),
            _opt(
                "--per-host",
                env="PER_HOST",
                type=click.IntRange(1, 10_000),
                default=per_host,
                show_default=True,
                help="Requests in flight per host.",
            ),
            _opt(
                "--delay",
                env="DELAY",
                type=click.FloatRange(0, 3600),
                default=delay,
                show_default=True,
                help="Seconds between request starts to one host.",
            ),
            _opt(
                "--rate",
                env="RATE",
                type=RateParam(),
                default=None,
                help="At most this many request starts per second over all hosts (10/s, "
                "600/m), besides --per-host and --delay; per command or worker.",
            ),
            _opt(
                "--timeout",
                env="TIMEOUT",
                type=click.FloatRange(0, min_open=True),
                default=60.0,
                show_default=True,
                help="Total seconds for one attempt.",
            ),
            _opt(
                "--connect-timeout",
                env="CONNECT_TIMEOUT",
                type=click.FloatRange(0, min_open=True),
                default=10.0,
                show_default=True,
                help="Seconds to resolve and connect.",
            ),
            _opt(
                "--read-timeout",
                env="READ_TIMEOUT",
                type=click.FloatRange(0, min_open=True),
                default=30.0,
                show_default=True,
                help="Seconds to wait for each read.",
            ),
            _opt(
                "--retries",
                env="RETRIES",
                type=click.IntRange(0, 100),
                default=3,
                show_default=True,
                help="Retries for connection errors, timeouts, 429 and 5xx "
                "(exponential backoff, full jitter; Retry-After honoured).",
            ),
            _opt(
                "--max-bytes",
                env="MAX_BYTES",
                type=ByteSize(),
                default="10MiB",
                show_default=True,
                help="Body cap; larger bodies are recorded as too_large.",
            ),
            _opt(
                "--max-redirects",
                env="MAX_REDIRECTS",
                type=click.IntRange(0, 100),
                default=10,
                show_default=True,
                help="Redirects to follow per request.",
            ),
            _opt(
                "--save-bodies",
                env="SAVE_BODIES",
                is_flag=True,
                help="Keep response bodies in the store (zstd-compressed, deduplicated).",
            ),
            _opt(
                "--user-agent",
                env="USER_AGENT",
                default=DEFAULT_USER_AGENT,
                show_default=True,
                metavar="UA",
                help="User-Agent header sent.",
            ),
            _opt(
                "--insecure", env="INSECURE", is_flag=True, help="Do not verify TLS certificates."
            ),
            _opt(
                "--http",
                env="HTTP",
                type=click.Choice(HTTP_CLIENTS),
                default=HTTP_CLIENTS[0],
                show_default=True,
                help="HTTP client doing the requests: aiohttp, pyreqwest (Rust's "
                "reqwest and hyper; HTTP/2 with --http2), or auto: pyreqwest up to "
                f"{AUTO_PYREQWEST_CONCURRENCY} connections without a proxy, else aiohttp.",
            ),
            _opt(
                "--http2/--no-http2",
                env="HTTP2",
                default=False,
                show_default=True,
                help="Offer HTTP/2 to HTTPS servers (ALPN); needs pyreqwest (which auto then is).",
            ),
            _opt(
                "--extract",
                env="EXTRACT",
                type=ExtractRuleParam(),
                multiple=True,
                help="Record a field per page (repeatable): 'title=css:title::text', "
                "'links=css:a::attr(href)[]', 'sku=re:SKU-(\\d+)', 'ids=json:data.items[].id'; "
                '[] collects every match. TOML: an [extract] table of name = "rule".',
            ),
            _opt(
                "--emit",
                env="EMIT",
                metavar="AMQP_URL",
                default=None,
                help="Also publish every result as it lands to RabbitMQ (amqp://user:pass@host/"
                "vhost): JSON on the topic exchange shoal.results, routing key the job name.",
            ),
            _opt(
                "-q",
                "--quiet",
                env="QUIET",
                is_flag=True,
                help="No progress display; errors and the exit code only.",
            ),
        ]
        for option in reversed(options):
            func = option(func)
        return header_options(cookie_options(proxy_options(observe_options(func))))

    return decorate


_RECRAWL_OPTIONS = (
    _opt(
        "--recrawl",
        env="RECRAWL",
        is_flag=True,
        help="Fetch the job's finished URLs again, asking each server whether the page "
        "changed (If-None-Match, If-Modified-Since): a 304 keeps the result; a changed "
        "page replaces it, the old one kept in the job's history; new links are followed.",
    ),
    _opt(
        "--revisit-after",
        env="REVISIT_AFTER",
        type=DurationParam(),
        default=None,
        help="With --recrawl (which it implies): only URLs fetched longer ago than this "
        "(30m, 12h, 1d, 2w).",
    ),
    _opt(
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
    for option in reversed(_RECRAWL_OPTIONS):
        func = option(func)
    return func


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


def header_options(func: F) -> F:
    """``-H``, ``--header-for``, ``--user`` and ``--bearer``: what every request carries."""
    options = [
        _opt(
            "-H",
            "--header",
            env="HEADER",
            type=HeaderParam(),
            multiple=True,
            help="Send this header to every host (repeatable). An Authorization, Cookie or "
            "Proxy-Authorization header goes only where --user would. Sent, never stored.",
        ),
        click.option(
            "--header-for",
            type=(str, HeaderParam()),
            multiple=True,
            metavar="HOST 'NAME: VALUE'",
            help="Send this header to HOST only (repeatable; wins over -H of the same name). "
            "Never carried by a redirect to another origin.",
        ),
        _opt(
            "--user",
            env="USER",
            metavar="USER:PASSWORD",
            help="HTTP basic auth, sent only to the seeds' hosts (crawl) or to each input "
            "URL's own host (fetch), never to another origin a redirect leads to. Not "
            "stored: a rerun must give it again.",
        ),
        _opt(
            "--bearer",
            env="BEARER",
            metavar="TOKEN",
            help="Authorization: Bearer TOKEN, sent where --user would be. Not stored.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def proxy_options(func: F) -> F:
    """``--proxy``, ``--proxies`` and ``--no-proxy-env``."""
    options = [
        _opt(
            "--proxy",
            env="PROXY",
            metavar="URL",
            help="Send every request through this proxy: http://[USER:PASS@]HOST:PORT "
            "(https:// too). Its credentials are sent, never stored.",
        ),
        _opt(
            "--proxies",
            "proxies_file",
            env="PROXIES",
            metavar="FILE",
            help="Rotate over the proxies in FILE (one URL a line), round-robin; one that "
            "fails 3 times in a row is taken out for 60 s (counted in the summary).",
        ),
        _opt(
            "--no-proxy-env",
            env="NO_PROXY_ENV",
            is_flag=True,
            help="Ignore http_proxy, https_proxy, all_proxy and no_proxy. "
            "[default: honoured, as curl and wget do, unless --proxy/--proxies is given]",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def build_proxies(params: dict[str, Any]) -> tuple[str, ...]:
    """The proxies given with ``proxy_options`` (checked; none: environment or direct)."""
    proxy, path = params.get("proxy"), params.get("proxies_file")
    if proxy and path:
        raise click.UsageError("give --proxy or --proxies, not both")
    try:
        if proxy:
            return (check_proxy(proxy),)
        if path:
            try:
                with open(path, encoding="utf-8") as lines:
                    return read_proxy_list(lines, source=path)
            except (OSError, UnicodeDecodeError) as exc:
                problem = getattr(exc, "strerror", None) or "not UTF-8 text"
                raise ConfigError(f"{path}: {problem}") from None
    except ConfigError as exc:
        hint = "--proxy" if proxy else "--proxies"
        raise click.BadParameter(str(exc), param_hint=hint) from None
    return ()


def cookie_options(func: F) -> F:
    """``--cookies``, ``--save-cookies`` and ``--no-cookies``."""
    options = [
        _opt(
            "--cookies",
            "cookies_file",
            env="COOKIES",
            metavar="FILE",
            help="Start with the cookies of this Netscape cookies.txt (as curl -b and wget "
            "--load-cookies read).",
        ),
        _opt(
            "--save-cookies",
            env="SAVE_COOKIES",
            metavar="FILE",
            help="Write the cookies held at the end as a Netscape cookies.txt (mode 600).",
        ),
        _opt(
            "--no-cookies",
            env="NO_COOKIES",
            is_flag=True,
            help="Neither keep nor send cookies. [default: cookies sites set are kept for "
            "the run and sent back, like a browser session; at most 50 per host]",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def build_cookies(params: dict[str, Any]) -> JobCookies | None:
    """The run's cookie jar, with ``--cookies`` loaded (None with ``--no-cookies``)."""
    if params.get("no_cookies"):
        for name, flag in (("cookies_file", "--cookies"), ("save_cookies", "--save-cookies")):
            if params.get(name):
                raise click.UsageError(f"{flag} and --no-cookies contradict each other")
        return None
    cookies = JobCookies()
    if params.get("cookies_file"):
        try:
            cookies.load(params["cookies_file"])
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--cookies") from None
    return cookies


def build_extra_headers(params: dict[str, Any]) -> ExtraHeaders:
    """The headers and credentials given with ``header_options``."""
    try:
        return ExtraHeaders.parse(
            headers=params.get("header") or (),
            headers_for=params.get("header_for") or (),
            user=params.get("user"),
            bearer=params.get("bearer"),
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


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
