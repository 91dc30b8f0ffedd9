"""A throwaway RabbitMQ node for tests and benchmarks: Debian's ``rabbitmq-server``.

::

    with ThrowawayRabbit() as rabbit:     # a private node in a temp dir, free ports
        url = rabbit.url                  # amqp://guest:guest@127.0.0.1:PORT/
        rabbit.restart()                  # stop and start it again (same ports, same data)

The node has its own name, data and log directories, Erlang cookie (its
``HOME``) and port mapper (``epmd`` on a free port), so it never meets another
node on the machine; every port listens on 127.0.0.1 only, and no plugin (the
management UI included) is enabled. Everything is removed on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["RabbitNotInstalled", "ThrowawayRabbit", "find_rabbit_server"]

_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # Debian's, without the su wrapper
_START_TIMEOUT = 90.0


class RabbitNotInstalled(RuntimeError):
    """No ``rabbitmq-server`` (or no Erlang ``epmd``) on this machine."""


def find_rabbit_server() -> Path:
    """The ``rabbitmq-server`` script to run the node with."""
    for candidate in (_SERVER, shutil.which("rabbitmq-server")):
        if candidate and os.path.exists(candidate):
            return Path(candidate)
    raise RabbitNotInstalled(
        "rabbitmq-server not found; install it (Debian: apt-get install rabbitmq-server) "
        "or set SHOAL_TEST_AMQP_URL"
    )


def _find_epmd() -> str:
    found = shutil.which("epmd")
    if found:
        return found
    for root in sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd")):
        return str(root)
    raise RabbitNotInstalled("Erlang's epmd not found (it comes with rabbitmq-server)")


def _free_ports(n: int) -> list[int]:
    sockets = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class ThrowawayRabbit:
    def __init__(self) -> None:
        self._server = find_rabbit_server()
        self._epmd_bin = _find_epmd()
        self._root: Path | None = None
        self._node: subprocess.Popen[bytes] | None = None
        self._epmd: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._dist_port = 0
        self._epmd_port = 0
        self._name = f"shoal-{uuid.uuid4().hex[:8]}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        root = self._root
        assert root is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update(
            HOME=str(root),
            ERL_EPMD_PORT=str(self._epmd_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_NODENAME=self._name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self._dist_port),
            RABBITMQ_MNESIA_BASE=str(root / "mnesia"),
            RABBITMQ_LOG_BASE=str(root / "log"),
            RABBITMQ_PID_FILE=str(root / "node.pid"),
            RABBITMQ_CONFIG_FILE=str(root / "rabbitmq"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(root / "advanced.config"),
            RABBITMQ_CONF_ENV_FILE=str(root / "rabbitmq-env.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(root / "enabled_plugins"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        return env

    def start(self) -> str:
        """Create and start the node; return its AMQP URL."""
        root = self._root = Path(tempfile.mkdtemp(prefix="shoal-rabbit-"))
        (root / "enabled_plugins").write_text("[].\n")
        (root / "rabbitmq-env.conf").write_text("")
        (root / "rabbitmq.conf").write_text("loopback_users = none\nlog.console = false\n")
        (root / "advanced.config").write_text("[].\n")
        self.port, self._dist_port, self._epmd_port = _free_ports(3)
        self._epmd = subprocess.Popen(
            [self._epmd_bin, "-port", str(self._epmd_port), "-address", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self._env(),
        )
        self.start_server()
        return self.url

    def start_server(self) -> None:
        root = self._root
        assert root is not None
        with open(root / "server.out", "ab") as out:
            self._node = subprocess.Popen(
                [str(self._server)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=str(root),
                start_new_session=True,
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while not _listening(self.port):
            if self._node.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited at start: {self._tail()}")
            if time.monotonic() > deadline:
                self.stop_server()
                raise RuntimeError(f"rabbitmq-server did not start in time: {self._tail()}")
            time.sleep(0.2)

    def _tail(self) -> str:
        assert self._root is not None
        with contextlib.suppress(OSError):
            return (self._root / "server.out").read_text(errors="replace")[-2000:]
        return ""

    def stop_server(self) -> None:
        """Stop the node (SIGTERM: a clean shutdown, connections closed); keep its data."""
        node, self._node = self._node, None
        if node is None or node.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGTERM)
        try:
            node.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)
            node.wait(timeout=10)

    def restart(self) -> None:
        self.stop_server()
        self.start_server()

    def stop(self) -> None:
        try:
            self.stop_server()
        finally:
            epmd, self._epmd = self._epmd, None
            if epmd is not None:
                epmd.kill()
                epmd.wait(timeout=10)
            root, self._root = self._root, None
            if root is not None:
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
