"""Process resources a crawler needs: enough file descriptors, a fast loop."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["pid_alive", "raise_nofile_limit", "run_loop"]

log = logging.getLogger("shoal.engine.resources")
T = TypeVar("T")


def raise_nofile_limit(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (never above the hard limit).

    Thousands of connections need thousands of descriptors and many systems
    default the soft limit to 1024. Returns the soft limit now in force.
    """
    try:
        import resource
    except ImportError:  # not POSIX
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            log.debug("raised RLIMIT_NOFILE soft limit from %d to %d", soft, target)
            return target
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit above %d", soft)
            return int(soft)
    return int(soft) if soft != resource.RLIM_INFINITY else wanted


def pid_alive(pid: int) -> bool:
    """Whether a process with that pid exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Collect the youngest generation after this many new container objects, not 700. Every
# page allocates a few dozen short-lived containers (futures, results, rows) while
# thousands live on (in-flight requests, the frontier window): at 700 most young
# collections find little garbage and promote the survivors, which then cost again in
# the older generations. See docs/benchmarks.md.
_YOUNG_THRESHOLD = 20_000


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop when it is installed, else on asyncio's default loop.

    While it runs, the garbage collector's youngest generation is collected less often
    (``_YOUNG_THRESHOLD``); the thresholds in force before are restored after.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], _YOUNG_THRESHOLD), *thresholds[1:])
    try:
        try:
            import uvloop
        except ImportError:
            return asyncio.run(main)
        result: T = uvloop.run(main)
        return result
    finally:
        gc.set_threshold(*thresholds)
