"""Shared benchmark plumbing: servers on loopback and timed child processes.

Every load loop here is bounded: a fixed URL count and a wall-clock limit per run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

RUN_LIMIT_S = 300.0


@dataclass
class Measured:
    name: str
    pages: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    exit_code: int
    #: The child's standard output, when run_measured was asked to keep it.
    stdout: str = ""
    #: "" (exited by itself), "interrupted" (SIGINT from the harness) or "killed".
    stopped: str = ""

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_us_per_page(self) -> float:
        return 1e6 * self.cpu_s / self.pages if self.pages else 0.0


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


_NGINX_HEAD = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log crit;
events {{ worker_connections 8192; multi_accept on; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    default_type text/html;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
"""

NGINX_CONF = (
    _NGINX_HEAD
    + """
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location / {{ return 200 "{body}"; }}
    }}
}}
"""
)

#: A static site from files: ``/`` is ``index.html``, pages are extensionless files under
#: ``page/``, served as text/html.
SITE_NGINX_CONF = (
    _NGINX_HEAD
    + """
    sendfile on;
    tcp_nopush on;
    types {{ text/html html; }}
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {root};
        index index.html;
        location / {{ }}
        location /page/ {{ default_type text/html; }}
    }}
}}
"""
)

STATIC_BODY = (
    "<!doctype html><html><head><title>static</title></head>"
    "<body><p>A small static page for throughput benchmarks.</p></body></html>"
)


def nginx_path() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )


@contextmanager
def static_server(prefer_nginx: bool = True) -> Iterator[tuple[str, str]]:
    """Yield (base_url, server_name): nginx when installed, else testweb in a child process.

    Every path answers 200 with the same small page.
    """
    nginx = nginx_path()
    if prefer_nginx and nginx:
        body = STATIC_BODY.replace('"', '\\"')

        def conf(tmp: str, port: int) -> str:
            return NGINX_CONF.format(dir=tmp, port=port, body=body)

        with _nginx(nginx, conf) as base:
            yield base, "nginx (1 worker)"
        return
    with _testweb([]) as base:
        yield base, "shoal testweb (1 process)"


@contextmanager
def site_server(
    root: Path, testweb_args: list[str], prefer_nginx: bool = True
) -> Iterator[tuple[str, str]]:
    """Yield (base_url, server_name) for the static site in ``root``.

    nginx serves the files when installed; otherwise shoal's testweb serves the same
    link graph from memory, started with ``testweb_args`` (``--pages``, ``--links`` …).
    ``root`` and its parents must be readable by nginx's worker user (nobody, under root).
    """
    nginx = nginx_path()
    if prefer_nginx and nginx:
        root = root.resolve()
        with _nginx(
            nginx, lambda tmp, port: SITE_NGINX_CONF.format(dir=tmp, port=port, root=root)
        ) as base:
            yield base, "nginx (1 worker, static files)"
        return
    with _testweb(testweb_args) as base:
        yield base, "shoal testweb (1 process; nginx not used)"


@contextmanager
def _nginx(nginx: str, conf_text: Callable[[str, int], str]) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="shoal-bench-nginx-") as tmp:
        port = free_port()
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(conf_text(tmp, port))
        proc = subprocess.Popen([nginx, "-c", str(conf), "-p", tmp], stderr=subprocess.PIPE)
        try:
            _wait_port(port)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextmanager
def _testweb(args: list[str]) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "shoal.testweb", "--hosts", "1", "--first-address", "1", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        info = json.loads(line)
        yield info["base_urls"][0]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def _wait_port(port: int, timeout: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def run_measured(
    name: str,
    argv: list[str],
    pages: int,
    *,
    env: dict[str, str] | None = None,
    limit_s: float = RUN_LIMIT_S,
    keep_stdout: bool = False,
    interrupt: Callable[[float], bool] | None = None,
    grace_s: float = 30.0,
) -> Measured:
    """Run a child process to completion; wall time, its CPU time and peak RSS via wait4.

    The child is killed after ``limit_s``. ``interrupt``, if given, is called about every
    10 ms with the seconds elapsed; once it returns True the child gets one SIGINT and
    then ``grace_s`` to exit before it is killed. ``keep_stdout`` keeps the child's
    standard output in ``Measured.stdout`` (else it is discarded).
    """
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **(env or {})},
            stdout=out if keep_stdout else subprocess.DEVNULL,
        )
        deadline = start + limit_s
        stopped = ""
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.perf_counter()
            if now > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                stopped = "killed"
                break
            if not stopped and interrupt is not None and interrupt(now - start):
                proc.send_signal(signal.SIGINT)
                stopped = "interrupted"
                deadline = min(deadline, now + grace_s)
            time.sleep(0.01)
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode(errors="replace") if keep_stdout else ""
    return Measured(
        name=name,
        pages=pages,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
        exit_code=os.waitstatus_to_exitcode(status),
        stdout=text,
        stopped=stopped,
    )
