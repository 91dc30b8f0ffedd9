"""Where jobs, frontiers and results live: one ``Store`` protocol, one backend per file.

``open_store(location)`` picks the backend from the location's form::

    crawl.db, ./runs/crawl.db, ~/crawl.db     SQLite file (SQLiteStore)
    sqlite:///relative.db, sqlite:////abs.db  SQLite file, URL form
    postgresql://user@host/db                 PostgreSQL (PostgresStore), shared by workers
    postgresql://user@host/db?search_path=s   ... with the tables in schema s

The store comes back unopened: ``await store.open()`` (or ``async with store``).
"""

from __future__ import annotations

import os

from shoal.core.errors import ConfigError
from shoal.core.ports import Store
from shoal.store.postgres.store import PostgresStore
from shoal.store.sqlite.store import SQLiteStore

__all__ = ["PostgresStore", "SQLiteStore", "Store", "open_store"]

_SQLITE_URL = "sqlite:///"
_ACCEPTED = "a file path, sqlite:///path or postgresql://..."


def open_store(location: str) -> Store:
    """Return the (unopened) store for ``location``; raise ``ConfigError`` for a bad one."""
    if not location.strip():
        raise ConfigError(f"store location is empty; expected {_ACCEPTED}")
    scheme, sep, _ = location.partition("://")
    if not sep:
        return SQLiteStore(os.path.expanduser(location))
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not location.startswith(_SQLITE_URL) or len(location) == len(_SQLITE_URL):
            raise ConfigError(f"invalid SQLite store URL {location!r}; expected sqlite:///path")
        return SQLiteStore(os.path.expanduser(location[len(_SQLITE_URL) :]))
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(location)
    raise ConfigError(f"unsupported store location {location!r}; expected {_ACCEPTED}")
