"""The SQLite store's connections: how the writer and the readers are opened, the one
thread that owns each, and how ``sqlite3`` errors become shoal's store errors.

Errors worth waiting out (locked, I/O error, cannot open) become
``StoreUnavailable``; the rest (disk full, corrupt file) ``StoreError``, each with
a one-line message naming the file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from shoal.core.errors import SchemaError, StoreError, StoreUnavailable
from shoal.store.sqlite import schema

__all__ = [
    "ConnectionThread",
    "check_path",
    "error_name",
    "open_reader",
    "open_writer",
    "store_error",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

_WRITER_PRAGMAS = (
    "PRAGMA synchronous = NORMAL",
    "PRAGMA cache_size = -65536",  # KiB: 64 MiB keeps a large frontier's indexes in memory
    "PRAGMA temp_store = MEMORY",
    # Random fingerprints dirty pages all over the dedupe index; checkpointing every ~40 MiB
    # of WAL instead of every 4 MiB writes each page back far less often (+30-60% admission).
    "PRAGMA wal_autocheckpoint = 10000",
    "PRAGMA journal_size_limit = 67108864",  # trim the -wal file back to 64 MiB after use
)
_READER_PRAGMAS = (
    "PRAGMA query_only = ON",
    "PRAGMA cache_size = -16384",
    "PRAGMA temp_store = MEMORY",
)
# Errors worth waiting out or retrying; the rest will not fix themselves.
_TRANSIENT = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_PROTOCOL")
_REASONS = {
    "SQLITE_FULL": "the disk is full",
    "SQLITE_READONLY": "the database is read-only",
    "SQLITE_CORRUPT": "the database file is corrupt",
    "SQLITE_NOTADB": "the file is not an SQLite database",
    "SQLITE_IOERR": "disk I/O error",
    "SQLITE_CANTOPEN": "cannot open the database file",
    "SQLITE_PERM": "permission denied",
}


def error_name(exc: sqlite3.Error) -> str:
    return getattr(exc, "sqlite_errorname", None) or ""


def store_error(what: str, path: str, exc: sqlite3.Error, busy_timeout: float) -> StoreError:
    name = error_name(exc)
    base_name = "_".join(name.split("_", 2)[:2])  # SQLITE_IOERR_WRITE → SQLITE_IOERR
    if base_name in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        reason = f"the database stayed locked by another connection for over {busy_timeout:g}s"
    else:
        reason = _REASONS.get(base_name) or str(exc) or name or type(exc).__name__
    if what == "open":
        message = f"cannot open store {path}: {reason}"
    else:
        message = f"{what} failed on {path}: {reason}"
    if base_name in _TRANSIENT:
        return StoreUnavailable(message)
    return StoreError(message)


def check_path(path: str) -> None:
    """Refuse, with a message naming the path, what SQLite would refuse obscurely."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise StoreUnavailable(f"cannot open store {path}: it is a directory")
    if not os.path.exists(parent):
        raise StoreUnavailable(f"cannot open store {path}: directory {parent} does not exist")
    if not os.path.isdir(parent):
        raise StoreUnavailable(f"cannot open store {path}: {parent} is not a directory")
    # WAL keeps two files beside the database, so the directory must be writable too.
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreUnavailable(f"cannot open store {path}: directory {parent} is not writable")
    if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        raise StoreUnavailable(f"cannot open store {path}: the file is not readable and writable")


def open_writer(path: str, busy_timeout: float) -> sqlite3.Connection:
    check_path(path)
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    except sqlite3.Error as exc:
        raise store_error("open", path, exc, busy_timeout) from exc
    try:
        try:
            # Before anything writes: a foreign file must be left exactly as it was.
            schema.check_version(conn, path)
        except sqlite3.DatabaseError as exc:
            if error_name(exc).startswith("SQLITE_NOTADB"):
                raise SchemaError(f"{path} is not a shoal store (not an SQLite database)") from exc
            raise
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("%s: journal mode is %s, not WAL; concurrent readers will wait", path, mode)
        for pragma in _WRITER_PRAGMAS:
            conn.execute(pragma)
        version = schema.migrate(conn, path)
        log.debug("opened %s (schema %d)", path, version)
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlite3.Error):
            raise store_error("open", path, exc, busy_timeout) from exc
        raise
    return conn


def open_reader(path: str, busy_timeout: float) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
        try:
            for pragma in _READER_PRAGMAS:
                conn.execute(pragma)
        except BaseException:
            conn.close()
            raise
    except sqlite3.Error as exc:
        raise store_error("open", path, exc, busy_timeout) from exc
    return conn


class ConnectionThread:
    """One thread that owns one connection; every use of the connection runs there."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None

    async def start(self, connect: Callable[[], sqlite3.Connection]) -> None:
        try:
            await self.run(self._connect, connect)
        except BaseException:
            # If this await was cancelled, the connect may still finish: close it after.
            self._executor.submit(self._disconnect)
            self._executor.shutdown(wait=False)
            raise

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _connect(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._conn = connect()

    def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the connection; only ever called in this thread."""
        assert self._conn is not None, "connection used before start()"
        return fn(self._conn)

    async def stop(self) -> None:
        # Queue the close before shutting down: it still runs if this await is cancelled.
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
        self._executor.shutdown(wait=False)
        await future

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
