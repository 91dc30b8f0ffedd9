"""The ``shoal serve`` command: settings from options and the environment, then uvicorn."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from shoal.cli.observe import Observe, observe_options
from shoal.core.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from shoal.service._settings import ServiceSettings

__all__ = ["serve"]

EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_INTERRUPTED = 130
OPEN_FILES = 65536
"""Descriptors the service asks for: one per WebSocket client and per connection of its
jobs (never above the hard limit)."""


@click.command()
@click.option(
    "--store",
    default="shoal.db",
    show_default=True,
    envvar="SHOAL_STORE",
    help="Where jobs live: an SQLite file, or postgresql://... (SHOAL_STORE).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port (0: any free).")
@click.option(
    "--token",
    envvar="SHOAL_TOKEN",
    default=None,
    help="Bearer token every route but /healthz requires (SHOAL_TOKEN; prefer the "
    "variable: an option shows in the process list). Needed to listen beyond loopback.",
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="Let jobs fetch loopback, private, link-local and other reserved addresses.",
)
@click.option(
    "--max-jobs", default=100, show_default=True, type=int, help="Jobs the store may hold."
)
@click.option(
    "--ws-page-rate",
    default=1000.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Page events a second sent to all WebSocket clients together (0: no limit); "
    "each client gets an equal share, the rest are counted as skipped.",
)
@click.option(
    "--emit",
    envvar="SHOAL_EMIT",
    default=None,
    metavar="AMQP_URL",
    help="Publish every result of every job as it lands to this broker's topic exchange "
    "shoal.results (routing key: the job).",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="Allow browsers on this origin to call the API (repeat; off by default).",
)
@observe_options
def serve(
    store: str,
    host: str,
    port: int,
    token: str | None,
    allow_private: bool,
    max_jobs: int,
    ws_page_rate: float,
    cors_origins: tuple[str, ...],
    emit: str | None,
    **observing: Any,
) -> None:
    """Run the job service: REST API, WebSocket events and /metrics (docs/service.md)."""
    from shoal.service._settings import ServiceSettings

    try:
        settings = ServiceSettings(
            store=store,
            host=host,
            port=port,
            token=token or None,
            allow_private=allow_private,
            max_jobs=max_jobs,
            ws_page_rate=ws_page_rate,
            cors_origins=cors_origins,
            emit=emit or None,
        )
    except ConfigError as exc:
        click.echo(f"shoal: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    run(settings, Observe.of(observing))


def _cannot_listen(host: str, port: int) -> str | None:
    """Why the service could not listen on ``host``:``port`` (None: it can), found by
    binding a socket to each of its addresses as the server will, then closing it."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host}: {exc.strerror}"
    for family, kind, proto, _name, address in found:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                return f"cannot listen on {host} port {port}: {exc.strerror or exc}"
    return None


def _stopped(_signum: int, _frame: FrameType | None) -> None:
    """What a SIGTERM does once uvicorn has shut down gracefully on it: nothing more, so
    that the run ends normally (a profile is written) and exits 0."""


def run(settings: ServiceSettings, observe: Observe | None = None) -> None:
    import uvicorn

    from shoal.cli.observe import debugged
    from shoal.engine.profiling import profiled
    from shoal.engine.resources import raise_nofile_limit, run_loop
    from shoal.service._app import create_app
    from shoal.service._frames import FramesProtocol
    from shoal.store import open_store

    observe = observe or Observe()

    try:
        store = open_store(settings.store)
    except ConfigError as exc:
        click.echo(f"shoal: {exc}", err=True)
        sys.exit(EXIT_USAGE)

    async def check() -> None:
        await store.open()  # creates or migrates it
        await store.close()
        if settings.emit is not None:
            from shoal.queue._amqp import connect

            # Before uvicorn configures logging, the AMQP clients' retry messages would
            # reach stderr as bare lines; the outcome is reported below, in one line.
            loggers = [logging.getLogger(name) for name in ("aio_pika", "aiormq")]
            levels = [logger.level for logger in loggers]
            for logger in loggers:
                logger.setLevel(logging.CRITICAL)
            try:
                connection = await connect(settings.emit)
                await connection.close()
            finally:
                for logger, level in zip(loggers, levels, strict=True):
                    logger.setLevel(level)

    from shoal.queue import BrokerUnavailable

    try:
        # A store that cannot be opened, or a broker that cannot be reached, is a
        # one-line error up front.
        asyncio.run(check())
    except StoreError as exc:
        click.echo(f"shoal: store error: {exc}", err=True)
        sys.exit(EXIT_STORE)
    except BrokerUnavailable as exc:
        click.echo(f"shoal: broker error: {exc}", err=True)
        sys.exit(EXIT_STORE)
    problem = _cannot_listen(settings.host, settings.port)
    if problem is not None:
        click.echo(f"shoal: {problem}", err=True)
        sys.exit(EXIT_USAGE)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.max_ws_message_bytes,
        # Events are written as ready-made frames to each transport (see _frames.py).
        ws=FramesProtocol,
        # Events are small JSON texts; compressing each one for each client would cost a
        # zlib stream per client in memory and a compression per frame sent.
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=30,
        server_header=False,
        log_level="info",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    raise_nofile_limit(OPEN_FILES)
    # uvicorn handles SIGTERM itself, then raises it again once it has stopped.
    signal.signal(signal.SIGTERM, _stopped)
    try:
        with profiled(observe.profile):
            main = server.serve()
            run_loop(debugged(main, observe) if observe.debug else main)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit as exc:
        if exc.code == uvicorn.config.STARTUP_FAILURE:
            # uvicorn logged why; its code would read as shoal's "store error" (3).
            sys.exit(EXIT_USAGE)
        raise
    except Exception as exc:
        if observe.debug or os.environ.get("SHOAL_DEBUG"):
            raise
        click.echo(
            f"shoal: internal error: {type(exc).__name__}: {exc} "
            "(set SHOAL_DEBUG=1 or give --debug for details)",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)
