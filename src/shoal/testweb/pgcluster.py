"""A throwaway PostgreSQL cluster for tests and benchmarks: ``initdb`` + ``pg_ctl``.

::

    with ThrowawayPostgres() as pg:       # a private cluster in a temp dir, random port
        dsn = pg.dsn                      # postgresql://postgres@127.0.0.1:PORT/postgres
        pg.restart()                      # stop and start it again (same port, same data)

The server listens on 127.0.0.1 only, trusts local connections, and is removed
with its data on exit. ``initdb`` refuses to run as root: as root, the cluster
runs as the ``postgres`` user (or ``nobody``). ``fsync=False`` (the default)
trades durability on power loss, which tests never see, for speed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["PostgresNotInstalled", "ThrowawayPostgres", "find_pg_bin"]


class PostgresNotInstalled(RuntimeError):
    """No ``initdb``/``pg_ctl`` on this machine."""


def find_pg_bin() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if candidates:
        return Path(candidates[-1]).parent
    raise PostgresNotInstalled(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; install them "
        "(Debian: apt-get install postgresql) or set SHOAL_TEST_PG_DSN"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ThrowawayPostgres:
    def __init__(self, *, fsync: bool = False, max_connections: int = 200) -> None:
        self._bin = find_pg_bin()
        self._fsync = fsync
        self._max_connections = max_connections
        self._root: Path | None = None
        self.port = 0

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _user(self) -> str | None:
        """Who runs the server: None (this user) unless we are root."""
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                pwd.getpwnam(name)
                return name
        raise PostgresNotInstalled("running as root and no 'postgres' user to run PostgreSQL as")

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [str(self._bin / args[0]), *args[1:]],
            user=self._user(),
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stderr.strip() or result.stdout}")

    @property
    def _data(self) -> Path:
        assert self._root is not None
        return self._root / "data"

    def start(self) -> str:
        """Create and start the cluster; return its DSN."""
        self._root = Path(tempfile.mkdtemp(prefix="shoal-pg-"))
        user = self._user()
        if user is not None:
            record = pwd.getpwnam(user)
            os.chown(self._root, record.pw_uid, record.pw_gid)
        self._run(
            "initdb", "-D", str(self._data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip
        self.port = _free_port()
        self._start_server()
        return self.dsn

    def _start_server(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={self._root}"
            f" -c max_connections={self._max_connections}"
            f" -c fsync={'on' if self._fsync else 'off'}"
            " -c synchronous_commit=on -c full_page_writes=off"
        )
        log = str(self._root / "server.log") if self._root else "/dev/null"
        self._run("pg_ctl", "-D", str(self._data), "-l", log, "-o", options, "-w", "start")

    def stop_server(self) -> None:
        """Stop the server (fast shutdown: clients are disconnected); keep the data."""
        self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop")

    def start_server(self) -> None:
        self._start_server()

    def restart(self) -> None:
        self.stop_server()
        self.start_server()

    def stop(self) -> None:
        root, self._root = self._root, None
        if root is None:
            return
        self._root = root
        try:
            self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")
        except RuntimeError:
            pass  # already stopped
        finally:
            self._root = None
            shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
