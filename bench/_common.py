"""Shared benchmark plumbing: a static server on loopback and timed child processes.

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
from collections.abc import Iterator
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


NGINX_CONF = """
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
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location / {{ return 200 "{body}"; }}
    }}
}}
"""

STATIC_BODY = (
    "<!doctype html><html><head><title>static</title></head>"
    "<body><p>A small static page for throughput benchmarks.</p></body></html>"
)


@contextmanager
def static_server(prefer_nginx: bool = True) -> Iterator[tuple[str, str]]:
    """Yield (base_url, server_name): nginx when installed, else testweb in a child process."""
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if prefer_nginx and nginx:
        with tempfile.TemporaryDirectory(prefix="shoal-bench-nginx-") as tmp:
            port = free_port()
            conf = Path(tmp) / "nginx.conf"
            conf.write_text(
                NGINX_CONF.format(dir=tmp, port=port, body=STATIC_BODY.replace('"', '\\"'))
            )
            proc = subprocess.Popen([nginx, "-c", str(conf), "-p", tmp], stderr=subprocess.PIPE)
            try:
                _wait_port(port)
                yield f"http://127.0.0.1:{port}", "nginx (1 worker)"
            finally:
                proc.terminate()
                proc.wait(timeout=10)
        return
    proc = subprocess.Popen(
        [sys.executable, "-m", "shoal.testweb", "--hosts", "1", "--first-address", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        info = json.loads(line)
        yield info["base_urls"][0], "shoal testweb (1 process)"
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
    name: str, argv: list[str], pages: int, *, env: dict[str, str] | None = None
) -> Measured:
    """Run a child process to completion; wall time, its CPU time and peak RSS via wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)
    deadline = start + RUN_LIMIT_S
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.01)
    wall = time.perf_counter() - start
    return Measured(
        name=name,
        pages=pages,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
        exit_code=os.waitstatus_to_exitcode(status),
    )
