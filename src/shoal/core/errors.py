"""shoal's one exception tree: what a caller of shoal may catch.

::

    ShoalError
    ├── ConfigError(ValueError)           an option value is invalid
    │   └── JobConflict                   the job exists with other settings, or another
    │                                     command is running it
    ├── InputError(ValueError)            an input line is invalid (carries line number)
    ├── IllegalTransition(RuntimeError)   a URL lifecycle step the table forbids (a bug)
    ├── OutputError(OSError)              an export file cannot be written (disk full, in use)
    ├── StoreError                        the store cannot do what was asked
    │   ├── StoreUnavailable(ConnectionError)   cannot open / reach the store
    │   └── SchemaError                   foreign file, or schema newer than this code
    └── BrokerUnavailable(ConnectionError)   cannot reach the message broker (RabbitMQ)

What happened to a URL is not an exception: it is a result, with a stable
``ErrorKind`` (``core.kinds``) when it failed. Each class here is raised somewhere
and is worth catching.
"""

from __future__ import annotations

__all__ = [
    "BrokerUnavailable",
    "ConfigError",
    "IllegalTransition",
    "InputError",
    "JobConflict",
    "OutputError",
    "SchemaError",
    "ShoalError",
    "StoreError",
    "StoreUnavailable",
]


class ShoalError(Exception):
    """Root of every error shoal raises on purpose."""


class ConfigError(ShoalError, ValueError):
    """An option has a value shoal cannot use."""


class JobConflict(ConfigError):
    """A job cannot run as asked: it was created with settings this run may not change, or
    another live command is running it."""


class InputError(ShoalError, ValueError):
    """An input line could not be turned into a request."""

    def __init__(self, message: str, *, line_no: int | None = None) -> None:
        self.line_no = line_no
        self.reason = message
        super().__init__(f"line {line_no}: {message}" if line_no is not None else message)


class IllegalTransition(ShoalError, RuntimeError):
    """A URL lifecycle transition that the lifecycle table does not allow."""


class OutputError(ShoalError, OSError):
    """An export or ``-o`` file cannot be written: the disk is full, the directory is
    not writable, or another process is writing the same file."""


class StoreError(ShoalError):
    """The store failed to do what was asked."""


class StoreUnavailable(StoreError, ConnectionError):
    """The store cannot be opened or reached."""


class SchemaError(StoreError):
    """The store is not a shoal store, or was written by a newer shoal."""


class BrokerUnavailable(ShoalError, ConnectionError):
    """The message broker could not be reached (after retrying with backoff)."""
