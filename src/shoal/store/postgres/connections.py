"""The PostgreSQL store's connections: how a DSN is named in messages (never with its
password), and how asyncpg and socket errors become shoal's store errors.

``StoreUnavailable`` when waiting or retrying may help (server unreachable,
restarting, connection lost, too many clients), ``StoreError`` otherwise; text
PostgreSQL cannot hold is told apart (``UnstorableText``) so the store can clean
it and write again.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shoal.core.errors import StoreError, StoreUnavailable

__all__ = ["TEXT_STATES", "UnstorableText", "is_transient", "redacted", "store_error"]

# Server-side conditions that pass: shutting down, starting up, too many clients.
_TRANSIENT_STATES = ("57P01", "57P02", "57P03", "53300", "08000", "08003", "08006")


def redacted(dsn: str) -> str:
    """The DSN without its password, for messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


class UnstorableText(Exception):
    """A string PostgreSQL cannot hold: a NUL character or a lone surrogate."""


# character_not_in_repertoire, untranslatable_character
TEXT_STATES = ("22021", "22P05")


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.DataError):
        return False
    if isinstance(exc, OSError | asyncio.TimeoutError | asyncpg.InterfaceError):
        return True
    if isinstance(exc, asyncpg.InternalClientError):
        # A connection caught by a server shutdown mid-operation ("cannot switch to state
        # ...; another operation is in progress"): the pool replaces it.
        return True
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.CannotConnectNowError):
        return True
    return isinstance(exc, asyncpg.PostgresError) and exc.sqlstate in _TRANSIENT_STATES


def store_error(what: str, where: str, exc: BaseException) -> StoreError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return StoreUnavailable(f"cannot open store {where}: {reason}")
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return StoreError(f"cannot open store {where}: {reason}")
    if isinstance(exc, ConnectionRefusedError | socket.gaierror):
        reason = f"the server does not answer ({reason})"
    message = (
        f"cannot open store {where}: {reason}"
        if what == "open"
        else (f"{what} failed on {where}: {reason}")
    )
    return StoreUnavailable(message) if is_transient(exc) else StoreError(message)
