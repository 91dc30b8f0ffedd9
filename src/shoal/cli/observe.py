"""``--debug`` and ``--profile``: what a person can turn on to see inside a run.

``--debug`` runs the event loop in asyncio's debug mode: every callback or
task step that holds the loop longer than ``--slow-callback-ms`` is logged
with the task it belongs to, un-awaited coroutines and misused loop calls are
reported, and an internal error shows its whole traceback. It slows the run
down; it is for finding out why a run stalls.

``--profile FILE`` writes a profile of the whole run (see
``shoal.engine.profiling``): the command's, and one per fetch process beside it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from shoal.cli.params import F, with_options
from shoal.engine.profiling import PROFILE_ENV

__all__ = ["Observe", "debugged", "observe_options"]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True, slots=True)
class Observe:
    debug: bool = False
    slow_callback_ms: float = 100.0
    profile: str | None = None

    @classmethod
    def of(cls, params: dict[str, Any]) -> Observe:
        """From a command's parameters (and remove them from ``params``)."""
        return cls(
            debug=bool(params.pop("debug", False)),
            slow_callback_ms=float(params.pop("slow_callback_ms", 100.0)),
            profile=params.pop("profile", None),
        )

    def export_profile(self) -> None:
        """Tell the fetch processes (forked or started later) where to profile."""
        if self.profile:
            os.environ[PROFILE_ENV] = os.path.abspath(self.profile)


def _profile_path(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Refuse a profile that cannot be written before the run, not after it."""
    if value is None:
        return None
    if os.path.isdir(value):
        raise click.BadParameter(f"{value} is a directory")
    parent = os.path.dirname(os.path.abspath(value))
    if not os.path.isdir(parent):
        problem = "is not a directory" if os.path.exists(parent) else "does not exist"
        raise click.BadParameter(f"cannot write {value}: {parent} {problem}")
    return value


def observe_options(func: F) -> F:
    """``--debug``, ``--slow-callback-ms`` and ``--profile``."""
    options = [
        click.option(
            "--debug",
            is_flag=True,
            envvar="SHOAL_DEBUG_LOOP",
            help="asyncio debug mode: log every callback that holds the event loop longer "
            "than --slow-callback-ms, with its task; tracebacks for internal errors.",
        ),
        click.option(
            "--slow-callback-ms",
            type=click.FloatRange(1, 60_000),
            default=100.0,
            show_default=True,
            help="With --debug: what counts as a slow callback.",
        ),
        click.option(
            "--profile",
            metavar="FILE",
            default=None,
            callback=_profile_path,
            help="Write a profile of the run: FILE.html (pyinstrument, open in a browser) or "
            "any other name (cProfile: python -m pstats FILE, or snakeviz FILE); fetch "
            "processes write FILE.fetch-PID beside it.",
        ),
    ]
    return with_options(func, options)


def debugged(main: Coroutine[Any, Any, T], observe: Observe) -> Coroutine[Any, Any, T]:
    """``main`` with the loop's slow-callback threshold set, and asyncio's warnings shown."""

    async def run() -> T:
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = observe.slow_callback_ms / 1000
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("shoal: asyncio: %(message)s"))
        logger = logging.getLogger("asyncio")
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        return await main

    return run()
