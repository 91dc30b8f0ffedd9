"""Run the real ``shoal`` command with some host names resolving to loopback addresses.

``SHOAL_TEST_HOSTS="xn--bcher-kva.test=127.0.0.2,xn--n3h.test=127.0.0.3"`` maps names
(as the HTTP client asks for them: ASCII, punycode) to addresses; numeric hosts resolve
as usual, and every other name fails at once as if it did not exist, so nothing leaves
the machine. Used as ``python _loopback_names.py fetch ...``.
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


def main() -> None:
    pairs = [p for p in os.environ.get("SHOAL_TEST_HOSTS", "").split(",") if p]
    _install(dict(pair.split("=", 1) for pair in pairs))
    from shoal.cli import main as shoal_main

    sys.argv[0] = "shoal"
    shoal_main()


if __name__ == "__main__":
    main()
