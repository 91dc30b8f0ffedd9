"""Run the real ``shoal`` command with some host names resolving to loopback addresses.

``SHOAL_TEST_HOSTS="xn--bcher-kva.test=127.0.0.2,xn--n3h.test=127.0.0.3"`` maps names
(as the HTTP client asks for them: ASCII, punycode) to addresses, for either HTTP client;
with aiohttp numeric hosts resolve as usual, and every other name fails at once as if it
did not exist, so nothing leaves the machine. Used as ``python _loopback_names.py fetch ...``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from typing import Any

import aiohttp.resolver


def _install(mapping: dict[str, str]) -> None:
    original = aiohttp.resolver.ThreadedResolver.resolve

    async def resolve(
        self: aiohttp.resolver.ThreadedResolver,
        host: str,
        port: int = 0,
        family: socket.AddressFamily = socket.AF_INET,
    ) -> list[dict[str, Any]]:
        name = host.rstrip(".").lower()
        if name in mapping:
            address = mapping[name]
            return [
                {
                    "hostname": host,
                    "host": address,
                    "port": port,
                    "family": socket.AF_INET,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST,
                }
            ]
        try:
            ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            raise OSError(socket.EAI_NONAME, f"{host}: not a test host name") from None
        return await original(self, host, port, family)

    aiohttp.resolver.ThreadedResolver.resolve = resolve  # type: ignore[method-assign]
    _install_for_pyreqwest(mapping)


def _install_for_pyreqwest(mapping: dict[str, str]) -> None:
    """The same names for the pyreqwest transport: its client is built with a static
    resolution of each (reqwest then connects to the URL's port)."""
    import shoal.engine.fetch.reqwest as transport_reqwest

    real = transport_reqwest.ClientBuilder

    class Builder:
        def __init__(self, inner: Any = None) -> None:
            self._inner = real() if inner is None else inner

        def __getattr__(self, name: str) -> Any:
            method = getattr(self._inner, name)

            def call(*args: Any, **kwargs: Any) -> Any:
                result = method(*args, **kwargs)
                return Builder(result) if isinstance(result, real) else result

            return call

        def build(self) -> Any:
            inner = self._inner
            for name, address in mapping.items():
                inner = inner.resolve(name, address, 0)
            return inner.build()

    transport_reqwest.ClientBuilder = Builder  # type: ignore[misc,assignment]


def main() -> None:
    pairs = [p for p in os.environ.get("SHOAL_TEST_HOSTS", "").split(",") if p]
    _install(dict(pair.split("=", 1) for pair in pairs))
    from shoal.cli import main as shoal_main

    sys.argv[0] = "shoal"
    shoal_main()


if __name__ == "__main__":
    main()
