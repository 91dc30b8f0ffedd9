"""Which addresses a service's jobs may reach."""

from __future__ import annotations

import pytest

from shoal.core.addresses import is_public_address

PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "1.1.1.1"]
BLOCKED = [
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CGNAT
    "100.127.255.254",
    "0.0.0.0",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.1.2.3",
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b:1::1",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2001:db8::1",  # documentation
    "not an address",
    "",
]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_unicast_addresses_are_allowed(address: str) -> None:
    assert is_public_address(address)


@pytest.mark.parametrize("address", BLOCKED)
def test_local_private_and_reserved_addresses_are_not(address: str) -> None:
    assert not is_public_address(address)


def test_nat64_and_mapped_forms_of_a_public_address_are_public() -> None:
    assert is_public_address("::ffff:8.8.8.8")
    assert is_public_address("64:ff9b::808:808")
