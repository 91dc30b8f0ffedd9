"""``shoal testweb``: serve the synthetic site until SIGINT or SIGTERM.

When every address listens, one JSON line goes to stdout::

    {"base_urls": ["http://127.0.0.2:PORT", ...], "port": PORT}

(with ``--zoo``, also ``"zoo": {"bomb/gzip": URL, ...}``, see :mod:`shoal.testweb.zoo`)

so a test or a script can start it as a subprocess and read where it is.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import click

from shoal.testweb._server import TestWeb
from shoal.testweb.site import SiteSpec
from shoal.testweb.zoo import Zoo

__all__ = ["testweb"]


@click.command("testweb")
@click.option("--hosts", default=1, show_default=True, help="Number of hosts (addresses).")
@click.option("--pages", default=100, show_default=True, help="Pages per host.")
@click.option("--links", default=5, show_default=True, help="Links per page.")
@click.option(
    "--cross-host", default=0.0, show_default=True, help="Fraction of links to other hosts."
)
@click.option("--seed", default=0, show_default=True, help="Seed of the link graph.")
@click.option("--latency-ms", default=0.0, show_default=True, help="Delay added to every page.")
@click.option(
    "--error-rate", default=0.0, show_default=True, help="Fraction of pages that answer 500."
)
@click.option(
    "--robots-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="robots.txt body for every host (default: robots.txt is 404).",
)
@click.option("--page-bytes", default=0, show_default=True, help="Pad pages to about this size.")
@click.option("--sitemaps/--no-sitemaps", default=True, show_default=True, help="Serve sitemaps.")
@click.option("--port", default=0, show_default=True, help="Port for every host (0: a free one).")
@click.option(
    "--first-address",
    default=2,
    show_default=True,
    help="Host i listens on 127.0.0.(FIRST_ADDRESS + i).",
)
@click.option(
    "--address",
    "addresses",
    multiple=True,
    help="Listen on these addresses instead, one per host (repeat; sets --hosts).",
)
@click.option("--no-log", is_flag=True, help="Count requests but keep no per-request log.")
@click.option(
    "--zoo",
    is_flag=True,
    help="Also serve the hostile-server zoo (bombs, resets, broken HTTP, TLS...) on the "
    'next addresses; its URLs are in the ready line under "zoo".',
)
def testweb(
    *,
    hosts: int,
    pages: int,
    links: int,
    cross_host: float,
    seed: int,
    latency_ms: float,
    error_rate: float,
    robots_file: Path | None,
    page_bytes: int,
    sitemaps: bool,
    port: int,
    first_address: int,
    addresses: tuple[str, ...],
    no_log: bool,
    zoo: bool,
) -> None:
    """Serve a deterministic synthetic website on loopback addresses."""
    try:
        robots = robots_file.read_text(encoding="utf-8") if robots_file is not None else None
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(str(exc), param_hint="--robots-file") from None
    try:
        if zoo and addresses:
            raise click.UsageError("--zoo places its hosts itself; it cannot take --address")
        spec = SiteSpec(
            hosts=len(addresses) if addresses else max(hosts, 3) if zoo else hosts,
            pages=pages,
            links_per_page=links,
            cross_host_links=cross_host,
            seed=seed,
            latency_ms=latency_ms,
            error_rate=error_rate,
            robots=robots,
            sitemaps=sitemaps,
            page_bytes=page_bytes,
            first_address=first_address,
        )
        if zoo:
            served: TestWeb | Zoo = Zoo(spec, port=port, record=not no_log)
        else:
            served = TestWeb(spec, addresses=addresses or None, port=port, record=not no_log)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        _run(_serve(served))
    except OSError as exc:
        raise click.ClickException(str(exc)) from None


async def _serve(served: TestWeb | Zoo) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with served:
        web = served.web if isinstance(served, Zoo) else served
        ready: dict[str, object] = {"base_urls": web.base_urls, "port": web.port}
        if isinstance(served, Zoo):
            ready["zoo"] = served.urls
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        await stop.wait()


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed, else on asyncio's own loop."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop
    except ImportError:
        pass
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point for ``python -m shoal.testweb``."""
    testweb.main(args=argv, prog_name="python -m shoal.testweb")
