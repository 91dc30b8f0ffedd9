"""Proxies: which one a request goes through, decided on values, the time passed in.

``--proxy URL`` is a rotation of one; ``--proxies FILE`` many, taken
round-robin. A proxy that fails ``failures`` times in a row (it refuses the
connection, or answers for itself: 407, a failed tunnel) is taken out for
``rest`` seconds, then tried again; while every proxy is out, the one that
comes back soonest is used rather than none (a job never silently goes
direct). Politeness stays per target host: proxies only change the route.

A proxy URL may hold credentials (``http://user:pass@proxy:3128``): they are
sent, and ``redacted`` drops them from what is stored or shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from shoal.core.errors import ConfigError

__all__ = [
    "PROXY_SCHEMES",
    "SOCKS_SCHEMES",
    "ProxyRotation",
    "check_proxy",
    "is_socks",
    "read_proxy_list",
    "redacted",
]

SOCKS_SCHEMES = ("socks5", "socks5h", "socks4")
PROXY_SCHEMES = ("http", "https", *SOCKS_SCHEMES)


def is_socks(url: str) -> bool:
    """Whether ``url`` names a SOCKS proxy (one for the whole session: it does not rotate)."""
    return url.partition("://")[0].lower() in SOCKS_SCHEMES


def check_proxy(url: str) -> str:
    """A proxy URL as given, checked: ``http://HOST:PORT`` or ``https://…``, perhaps with
    ``user:password@``. Raises ``ConfigError`` (naming it without credentials)."""
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    authority = rest.split("/", 1)[0].rpartition("@")[2]
    if not sep or scheme.lower() not in PROXY_SCHEMES or not authority:
        shown = redacted(text) if sep else text.split("@")[-1]
        raise ConfigError(
            f"a proxy is http://HOST:PORT, https://HOST:PORT or socks5://HOST:PORT, got {shown!r}"
        )
    return text


def redacted(url: str) -> str:
    """``url`` without its ``user:password@``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"


def read_proxy_list(lines: Iterable[str], *, source: str) -> tuple[str, ...]:
    """The proxies of a ``--proxies`` file: one URL a line, blank lines and ``#`` comments
    skipped; a bad line raises ``ConfigError`` with its number."""
    proxies: list[str] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            proxies.append(check_proxy(text))
        except ConfigError as exc:
            raise ConfigError(f"{source}:{number}: {exc}") from None
    if not proxies:
        raise ConfigError(f"{source}: no proxies in it")
    if len(proxies) > 1 and any(is_socks(proxy) for proxy in proxies):
        raise ConfigError(f"{source}: a SOCKS proxy does not rotate: give it alone (--proxy)")
    return tuple(dict.fromkeys(proxies))


@dataclass(slots=True)
class _Health:
    failures: int = 0
    out_until: float = 0.0


@dataclass(slots=True)
class ProxyRotation:
    """Round-robin over ``proxies``, skipping the ones taken out (see the module
    docstring). ``taken_out`` counts how many times a proxy was taken out."""

    proxies: Sequence[str]
    failures: int = 3
    rest: float = 60.0
    taken_out: int = 0
    _next: int = 0
    _health: dict[str, _Health] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.proxies:
            raise ConfigError("a proxy rotation needs at least one proxy")
        self._health = {proxy: _Health() for proxy in self.proxies}

    def choose(self, now: float) -> str:
        """The proxy for a request starting at ``now``."""
        count = len(self.proxies)
        for step in range(count):
            proxy = self.proxies[(self._next + step) % count]
            if self._health[proxy].out_until <= now:
                self._next = (self._next + step + 1) % count
                return proxy
        return min(self.proxies, key=lambda p: self._health[p].out_until)

    def failed(self, proxy: str, now: float) -> bool:
        """``proxy`` failed a request (the proxy itself, not the site behind it); True if
        that took it out."""
        health = self._health.get(proxy)
        if health is None:
            return False
        health.failures += 1
        if health.failures >= self.failures and health.out_until <= now:
            health.out_until = now + self.rest
            health.failures = 0
            self.taken_out += 1
            return True
        return False

    def worked(self, proxy: str) -> None:
        """A response came through ``proxy``."""
        health = self._health.get(proxy)
        if health is not None:
            health.failures = 0

    def out(self, now: float) -> list[str]:
        """The proxies taken out at ``now``."""
        return [p for p in self.proxies if self._health[p].out_until > now]
