"""Profiles of a whole run, fetch processes included (``--profile FILE``).

``FILE`` ending in ``.html`` is a pyinstrument report (open it in a browser: a
call tree of where the time went, statistical, cheap); anything else (say
``run.prof``) is a cProfile dump for ``python -m pstats`` or ``snakeviz``. The
command profiles its event-loop thread; each fetch process writes its own
file beside it, ``FILE`` with ``.fetch-PID`` before the extension, found
through ``SHOAL_PROFILE`` in its environment.
"""

from __future__ import annotations

import contextlib
import cProfile
import os
from collections.abc import Iterator

__all__ = ["PROFILE_ENV", "child_profile_path", "profiled"]

PROFILE_ENV = "SHOAL_PROFILE"


@contextlib.contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """Profile this thread while the block runs and write the report to ``path`` (nothing
    when ``path`` is None)."""
    if not path:
        yield
        return
    if path.endswith(".html"):
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="disabled")
        profiler.start()
        try:
            yield
        finally:
            profiler.stop()
            with open(path, "w", encoding="utf-8") as report:
                report.write(profiler.output_html())
        return
    stats = cProfile.Profile()
    stats.enable()
    try:
        yield
    finally:
        stats.disable()
        stats.dump_stats(path)


def child_profile_path(pid: int) -> str | None:
    """Where a fetch process with ``pid`` writes its profile, if the run is profiled."""
    path = os.environ.get(PROFILE_ENV)
    if not path:
        return None
    stem, extension = os.path.splitext(path)
    return f"{stem}.fetch-{pid}{extension}"
