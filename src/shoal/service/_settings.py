"""The service's settings: one frozen value, built by ``shoal serve`` from its options."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from shoal.core.errors import ConfigError

__all__ = ["ServiceSettings", "is_loopback_host"]

KiB = 1024
MiB = 1024 * KiB


def is_loopback_host(host: str) -> bool:
    """Whether binding to ``host`` keeps the service on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, kw_only=True, slots=True)
class ServiceSettings:
    """What ``shoal serve`` runs with.

    ``token``: the bearer token every route but ``/healthz`` requires (None: no token,
    allowed on loopback only). ``allow_private``: jobs may fetch loopback and private
    addresses. The rest are limits: a request body's bytes, URLs in one request, jobs in
    the store, an incoming WebSocket message's bytes, page events buffered per client, and
    page events sent a second to all clients together. ``emit``: a broker URL
    (``amqp://...``) every job's results are published to as they are committed (the
    topic exchange ``shoal.results``, routing key the job); None: not published.
    """

    store: str
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    allow_private: bool = False
    max_body_bytes: int = 8 * MiB
    max_urls_per_request: int = 10_000
    max_jobs: int = 100
    max_ws_message_bytes: int = 64 * KiB
    ws_queue: int = 1000
    ws_send_timeout: float = 10.0
    ws_page_rate: float = 1000.0
    progress_interval: float = 1.0
    processes: int = 0
    cors_origins: tuple[str, ...] = ()
    emit: str | None = None

    def __post_init__(self) -> None:
        if self.token is not None and (len(self.token) < 16 or not self.token.isprintable()):
            raise ConfigError("the token must be at least 16 printable characters")
        if self.token is None and not is_loopback_host(self.host):
            raise ConfigError(
                f"refusing to serve on {self.host} without a token: "
                "give --token (or SHOAL_TOKEN), or bind to 127.0.0.1"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0 to 65535, got {self.port}")
        for name in ("max_body_bytes", "max_urls_per_request", "max_ws_message_bytes", "ws_queue"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if self.max_jobs < 0:
            raise ConfigError("max_jobs must be at least 0")
        if self.emit is not None and not self.emit.startswith(("amqp://", "amqps://")):
            raise ConfigError("--emit takes a broker URL starting with amqp:// or amqps://")
        if not self.progress_interval > 0 or not self.ws_send_timeout > 0:
            raise ConfigError("progress_interval and ws_send_timeout must be positive")
