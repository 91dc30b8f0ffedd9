"""Refusing connections to non-public addresses, where the connection is made.

A job run with ``block_private`` connects only to public unicast addresses
(``shoal.core.addresses``). The check is in the socket factory the connector calls
for every address it actually connects to, so it holds for seeds, redirects and
discovered links alike, for literal IP addresses (which skip the resolver) and for a
name that resolves to a public address first and a private one later (DNS rebinding).
"""

from __future__ import annotations

import errno
import socket

from aiohappyeyeballs import AddrInfoType

from shoal.core.addresses import is_public_address

__all__ = ["BlockedAddress", "is_blocked", "public_only_socket"]

BLOCKED_MESSAGE = "address not allowed: loopback, private, link-local or reserved"


class BlockedAddress(OSError):
    """A connection to a non-public address was refused before it was made."""

    def __init__(self) -> None:
        # One message for every address, so that a host with several blocked addresses
        # still fails with this error rather than a combined OSError.
        super().__init__(errno.EACCES, BLOCKED_MESSAGE)


def public_only_socket(addr_info: AddrInfoType) -> socket.socket:
    """The socket to connect to ``addr_info``, or ``BlockedAddress`` for a non-public one."""
    family, type_, proto, _, address = addr_info
    if not is_public_address(str(address[0])):
        raise BlockedAddress()
    return socket.socket(family=family, type=type_, proto=proto)


def is_blocked(exc: BaseException) -> bool:
    """Whether a failed attempt was refused by ``public_only_socket``."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, BlockedAddress):
            return True
        if isinstance(seen, OSError) and seen.strerror == BLOCKED_MESSAGE:
            return True
        seen = getattr(seen, "os_error", None) or seen.__cause__
    return False
