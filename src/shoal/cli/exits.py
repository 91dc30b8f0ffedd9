"""How a ``shoal`` command ends: its exit codes, the one line on standard error, and the
loop a command's coroutine runs in.

Every failure a person can act on is a ``CliFailure`` (a message and an exit code) or
a ``ShoalError`` mapped to one here; anything else is a bug, reported in one line
unless ``SHOAL_DEBUG`` is set.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Coroutine
from typing import Any

from rich.console import Console

from shoal.cli.observe import Observe, debugged
from shoal.core.errors import OutputError, ShoalError, StoreError
from shoal.engine.profiling import profiled
from shoal.engine.resources import run_loop

__all__ = [
    "EXIT_CLOSED_PIPE",
    "EXIT_CODES",
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_OUTPUT",
    "EXIT_STORE",
    "EXIT_USAGE",
    "CliFailure",
    "closed_pipe",
    "configure_logging",
    "exit_closed_pipe",
    "first_shoal_error",
    "internal_error",
    "require_store_file",
    "run_command",
    "say",
]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_INPUT = 4
EXIT_OUTPUT = 5
EXIT_INTERRUPTED = 130


class CliFailure(Exception):
    """Ends the command with a one-line message and an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def first_shoal_error(exc: BaseException) -> ShoalError | None:
    """The first ShoalError inside ``exc`` (TaskGroups wrap failures in exception groups)."""
    if isinstance(exc, ShoalError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = first_shoal_error(inner)
            if found is not None:
                return found
    return None


EXIT_CODES = """\b
Exit codes:
  0    finished: every URL has an outcome (HTTP errors are outcomes)
  1    unexpected internal error (a bug: please report it)
  2    usage error: bad flag, value or input file; a job that holds other
       settings or that another command is running
  3    store error: cannot open, read or write the store (or reach the broker)
  4    invalid input lines with --strict (nothing was fetched)
  5    output error: cannot write the -o/export file (disk full, or another
       run is writing it); nothing half-written is left, the store is intact
  130  interrupted (Ctrl-C / SIGTERM); run the same command again to resume
  141  standard output was closed (piped into head, say): stopped quietly"""


def say(message: str) -> None:
    """One line on standard error, however long and whatever the terminal width."""
    text = " ".join(message.splitlines())
    Console(stderr=True).print(f"shoal: {text}", markup=False, highlight=False, soft_wrap=True)


def configure_logging() -> None:
    """What a person sees of the library's logs: shoal's warnings, one line each; nothing
    from the libraries beneath (asyncpg's pool logs tracebacks while a database restarts,
    which shoal already reports and rides out). SHOAL_DEBUG=1 shows everything."""
    if os.environ.get("SHOAL_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("shoal: %(message)s"))
    ours = logging.getLogger("shoal")
    ours.addHandler(handler)
    ours.setLevel(logging.WARNING)
    ours.propagate = False
    logging.getLogger().addHandler(logging.NullHandler())


def internal_error(exc: BaseException) -> str:
    """The message for a bug: the first real exception, not the TaskGroup that carried it."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"internal error: {type(exc).__name__}: {exc} (set SHOAL_DEBUG=1 for details)"


EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer killed by one


def closed_pipe(exc: BaseException) -> bool:
    """True when ``exc`` (or the first exception a TaskGroup carried) is a closed pipe."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return isinstance(exc, BrokenPipeError)


def exit_closed_pipe() -> None:
    """The reader of standard output went away (``| head``): stop without a word. Standard
    output points at /dev/null first, so that flushing it at exit fails no more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(EXIT_CLOSED_PIPE)


def run_command(coro: Coroutine[Any, Any, int], observe: Observe | None = None) -> None:
    """Run a command's coroutine in a fresh event loop and exit with its code: a failure
    ends in one line on standard error and the exit code that names it."""
    configure_logging()
    observe = observe or Observe()
    try:
        with profiled(observe.profile):
            code = run_loop(debugged(coro, observe) if observe.debug else coro)
    except CliFailure as exc:
        say(str(exc))
        code = exc.code
    except KeyboardInterrupt:
        code = 130
    except StoreError as exc:  # raised outside a job's run (counts, summary, export)
        say(f"store error: {exc}")
        code = EXIT_STORE
    except OutputError as exc:
        say(f"output error: {exc}")
        code = EXIT_OUTPUT
    except Exception as exc:
        if closed_pipe(exc):
            exit_closed_pipe()
        if os.environ.get("SHOAL_DEBUG") or observe.debug:
            raise
        say(internal_error(exc))
        code = EXIT_INTERNAL
    sys.exit(code)


def require_store_file(location: str) -> None:
    """Commands that only read must not create an empty store by accident."""
    if "://" not in location and not os.path.exists(location):
        raise CliFailure(f"store error: {location} does not exist", EXIT_STORE)
