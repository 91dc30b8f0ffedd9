"""The flags of what each request carries, as curl and wget take them: headers and
credentials (``-H``, ``--header-for``, ``--user``, ``--bearer``), proxies
(``--proxy``, ``--proxies``, ``--no-proxy-env``) and cookies (``--cookies``,
``--save-cookies``, ``--no-cookies``), and the values the engine takes from them.
Credentials given here are sent, never stored.
"""

from __future__ import annotations

from typing import Any

import click

from shoal.cli.params import F, HeaderParam, env_option, with_options
from shoal.core.errors import ConfigError
from shoal.core.proxies import check_proxy, read_proxy_list
from shoal.core.sendheaders import ExtraHeaders
from shoal.engine.fetch.cookies import JobCookies

__all__ = [
    "build_cookies",
    "build_extra_headers",
    "build_proxies",
    "cookie_options",
    "header_options",
    "proxy_options",
]


def header_options(func: F) -> F:
    """``-H``, ``--header-for``, ``--user`` and ``--bearer``: what every request carries."""
    options = [
        env_option(
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
        env_option(
            "--user",
            env="USER",
            metavar="USER:PASSWORD",
            help="HTTP basic auth, sent only to the seeds' hosts (crawl) or to each input "
            "URL's own host (fetch), never to another origin a redirect leads to. Not "
            "stored: a rerun must give it again.",
        ),
        env_option(
            "--bearer",
            env="BEARER",
            metavar="TOKEN",
            help="Authorization: Bearer TOKEN, sent where --user would be. Not stored.",
        ),
    ]
    return with_options(func, options)


def proxy_options(func: F) -> F:
    """``--proxy``, ``--proxies`` and ``--no-proxy-env``."""
    options = [
        env_option(
            "--proxy",
            env="PROXY",
            metavar="URL",
            help="Send every request through this proxy: http://[USER:PASS@]HOST:PORT "
            "(https:// too). Its credentials are sent, never stored.",
        ),
        env_option(
            "--proxies",
            "proxies_file",
            env="PROXIES",
            metavar="FILE",
            help="Rotate over the proxies in FILE (one URL a line), round-robin; one that "
            "fails 3 times in a row is taken out for 60 s (counted in the summary).",
        ),
        env_option(
            "--no-proxy-env",
            env="NO_PROXY_ENV",
            is_flag=True,
            help="Ignore http_proxy, https_proxy, all_proxy and no_proxy. "
            "[default: honoured, as curl and wget do, unless --proxy/--proxies is given]",
        ),
    ]
    return with_options(func, options)


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
        env_option(
            "--cookies",
            "cookies_file",
            env="COOKIES",
            metavar="FILE",
            help="Start with the cookies of this Netscape cookies.txt (as curl -b and wget "
            "--load-cookies read).",
        ),
        env_option(
            "--save-cookies",
            env="SAVE_COOKIES",
            metavar="FILE",
            help="Write the cookies held at the end as a Netscape cookies.txt (mode 600).",
        ),
        env_option(
            "--no-cookies",
            env="NO_COOKIES",
            is_flag=True,
            help="Neither keep nor send cookies. [default: cookies sites set are kept for "
            "the run and sent back, like a browser session; at most 50 per host]",
        ),
    ]
    return with_options(func, options)


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
