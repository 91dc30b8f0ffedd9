"""Process resources a crawler needs: enough file descriptors, a fast loop."""

from __future__ import annotations

import asyncio
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


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop when it is installed, else on asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    result: T = uvloop.run(main)
    return result
