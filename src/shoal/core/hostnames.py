"""Hosts of http(s) URLs as a browser parses them, and as a resolver can look them up.

``parse_host`` is the WHATWG host parser for the special schemes: a
percent-decoded domain is mapped (UTS #46, non-transitional, without STD3
rules) and punycoded, ``xn--`` labels must decode to valid mapped labels, a
domain that ends in a number is an IPv4 address in any WHATWG spelling
(``0x7f.1``, ``2130706433``) and becomes dotted decimal, and IPv6 addresses
are compressed. **Beyond WHATWG**, names that no resolver can look up are
refused: an empty label (``a..b``), a label over 63 characters, or over 253
characters in all. Every refusal is an ``InputError`` with a one-line reason.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from functools import lru_cache
from urllib.parse import unquote_to_bytes

import idna

from shoal.core.errors import InputError

__all__ = ["parse_host", "plain_host_is_canonical"]

_MAX_LABEL = 63  # characters in one DNS label (RFC 1035)
_MAX_NAME = 253  # characters in a domain name, without its trailing dot (RFC 1035)
_FORBIDDEN_DOMAIN = re.compile(r"[\x00-\x20#%/:<>?@\[\\\]^|\x7f]")
# A dotted-quad IPv4 address already in canonical form (no leading zeros, each ≤ 255).
_CANONICAL_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)
_REPLACEMENT_UTF8 = "\ufffd".encode()
_SURROGATE_UTF8 = re.compile(rb"\xed[\xa0-\xbf][\x80-\xbf]")  # U+D800-DFFF, "surrogatepass"
_RADIX_DIGITS = {8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def plain_host_is_canonical(host: str) -> bool:
    """Whether ``host``, lowercase ASCII letters, digits, "-" and dots in non-empty
    labels, is what ``parse_host`` returns for it, without asking the parser."""
    if len(host) > _MAX_LABEL and (
        len(host) > _MAX_NAME or any(len(label) > _MAX_LABEL for label in host.split("."))
    ):
        return False  # let the parser refuse it
    if host[host.rfind(".") + 1].isdigit() and _CANONICAL_IPV4.fullmatch(host) is None:
        return False  # a numeric host that is not plain dotted-quad: let the parser decide
    return "xn--" not in host  # else a punycode label to validate


@lru_cache(maxsize=4096)
def parse_host(text: str) -> str:
    """Host parsing (IDNA mapping is slow); links repeat hosts, so it is cached."""
    if text.startswith("["):
        return _parse_ipv6(text)
    domain = text
    if "%" in domain:
        # A lone surrogate is U+FFFD, as in a browser (and as the encoders do).
        raw = _SURROGATE_UTF8.sub(_REPLACEMENT_UTF8, domain.encode("utf-8", "surrogatepass"))
        domain = unquote_to_bytes(raw).decode("utf-8", "replace")
    domain = domain.lower() if domain.isascii() else _domain_to_ascii(domain)
    if not domain:
        raise InputError("missing host")
    if "xn--" in domain:
        _check_punycode_labels(domain)
    forbidden = _FORBIDDEN_DOMAIN.search(domain)
    if forbidden is not None:
        raise InputError(f"forbidden character {forbidden.group()!r} in host")
    if _ends_in_number(domain):
        return _parse_ipv4(domain)
    _check_dns_labels(domain)
    return domain


def _check_dns_labels(domain: str) -> None:
    """Refuse a name no resolver can look up: an empty label or one over 63 characters.

    WHATWG parses such hosts (``a..b``, ``http://./``); the socket layer then
    fails to encode them, after the request was admitted and retried.
    """
    name = domain[:-1] if domain.endswith(".") else domain
    if len(name) > _MAX_NAME:
        raise InputError(f"invalid host: {len(name)} characters, at most {_MAX_NAME} allowed")
    labels = name.split(".")
    for label in labels:
        if not label:
            raise InputError(f"invalid host {domain!r}: empty label")
        if len(label) > _MAX_LABEL:
            raise InputError(f"invalid host {domain[:80]!r}: a label over {_MAX_LABEL} characters")


def _parse_ipv6(text: str) -> str:
    inner = text[1:-1] if text.endswith("]") else ""
    if not inner or "%" in inner:  # no zone identifiers in URLs
        raise InputError(f"invalid IPv6 host {text!r}")
    try:
        address = ipaddress.IPv6Address(inner)
    except ValueError:
        raise InputError(f"invalid IPv6 host {text!r}") from None
    return f"[{address.compressed}]"


def _domain_to_ascii(domain: str) -> str:
    """UTS #46 ToASCII, non-transitional, without STD3 rules (as WHATWG)."""
    try:
        mapped = idna.uts46_remap(domain, std3_rules=False, transitional=False)
    except (idna.IDNAError, UnicodeError):
        raise InputError(f"invalid IDNA host {domain!r}") from None
    labels = mapped.split(".")
    for index, label in enumerate(labels):
        if label.isascii():
            continue
        if unicodedata.category(label[0]).startswith("M"):
            raise InputError(f"invalid IDNA host {domain!r}: label starts with a mark")
        labels[index] = "xn--" + label.encode("punycode").decode("ascii")
    return ".".join(labels)


def _check_punycode_labels(domain: str) -> None:
    """An ASCII ``xn--`` label must decode to a valid, already-mapped label."""
    for label in domain.split("."):
        if not label.startswith("xn--"):
            continue
        try:
            decoded = label[4:].encode("ascii").decode("punycode")
            valid = (
                bool(decoded)
                and not decoded.isascii()
                and idna.uts46_remap(decoded, std3_rules=False, transitional=False) == decoded
                and not unicodedata.category(decoded[0]).startswith("M")
            )
        except (UnicodeError, ValueError, OverflowError):
            valid = False
        if not valid:
            raise InputError(f"invalid IDNA host {domain!r}: bad punycode label {label!r}")


def _ends_in_number(domain: str) -> bool:
    labels = domain.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()
    last = labels[-1]
    if last.isdigit():  # ASCII here: the domain is ASCII by now
        return True
    return _ipv4_number(last) is not None


def _ipv4_number(text: str) -> int | None:
    if not text:
        return None
    radix = 10
    if text[:2] in ("0x", "0X"):
        text, radix = text[2:], 16
    elif len(text) > 1 and text[0] == "0":
        text, radix = text[1:], 8
    if not text:
        return 0
    if any(c not in _RADIX_DIGITS[radix] for c in text):
        return None
    return int(text, radix)


def _parse_ipv4(domain: str) -> str:
    labels = domain.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()
    if len(labels) > 4:
        raise InputError(f"invalid IPv4 host {domain!r}")
    numbers = []
    for label in labels:
        number = _ipv4_number(label)
        if number is None:
            raise InputError(f"invalid IPv4 host {domain!r}")
        numbers.append(number)
    if any(number > 255 for number in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise InputError(f"invalid IPv4 host {domain!r}: out of range")
    address = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        address += number * 256 ** (3 - index)
    return str(ipaddress.IPv4Address(address))
