"""Which IP addresses a service's jobs may connect to: public unicast ones only.

A service that fetches what its users ask must not become a way into its own network
(server-side request forgery). ``is_public_address`` is the rule, checked on the address
a connection is about to be made to (so a name that resolves to a private address, at
first or on a later lookup, is refused too).
"""

from __future__ import annotations

import ipaddress

__all__ = ["is_public_address"]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def is_public_address(text: str) -> bool:
    """Whether ``text`` (an IPv4 or IPv6 address, an IPv6 zone allowed) is a public unicast
    address: not loopback, private, link-local, shared (CGNAT), multicast, reserved or
    unspecified; an IPv6 address that carries an IPv4 one (mapped, NAT64, 6to4) is judged
    by that IPv4 address. Anything that does not parse is not public."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(str(address.ipv4_mapped))
        if address in _NAT64:
            return is_public_address(str(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)))
        if address in _NAT64_LOCAL:
            return False
        if address.sixtofour is not None:
            return is_public_address(str(address.sixtofour))
    if address.version == 4 and address in _CGNAT:
        return False
    return address.is_global and not address.is_multicast
