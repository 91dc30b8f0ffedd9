"""robots.txt path patterns (RFC 9309 §2.2.2, §2.2.3): how a rule and a URL's path
are normalised, and how a rule matches.

A rule matches from the first octet of the path; ``*`` is any run of characters,
a trailing ``$`` anchors the end, a ``$`` elsewhere is literal. The longest
pattern (in octets after normalisation, ``*`` and ``$`` included, as Google
counts) wins; between an allow and a disallow of the same length, allow wins.
Both the rule and the URL's path and query are normalised before comparing:
non-ASCII as UTF-8 escapes, escapes of unreserved characters decoded, and a
reserved character equal to its escape. That last point reads §2.2.2
literally: reserved octets are "percent-encoded prior to comparison" on both
sides, and Figure 4 needs it (``/foo/bar?baz=https://foo.bar`` matches
``...?baz=https%3A%2F%2Ffoo.bar``); so ``/a/b`` and ``/a%2Fb`` are one path to a
rule. ``%2A`` and ``%24`` in a rule are literal ``*`` and ``$``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Rule", "compile_rule", "normalize_path", "path_and_query"]

_URL_HEAD = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*")


# RFC 3986: unreserved characters compare decoded; reserved ones compare equal
# to their escapes (kept raw here, which only matters for rule lengths);
# everything else compares as uppercase %XX of its UTF-8 bytes.
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_RESERVED = ":/?#[]@!$&'()*+,;="
_RAW = frozenset(_UNRESERVED + _RESERVED)
_ALREADY_NORMAL = re.compile("[" + re.escape(_UNRESERVED + _RESERVED) + "]*").fullmatch
_NEEDS_WORK = re.compile("%[0-9A-Fa-f]{2}|[^" + re.escape(_UNRESERVED + _RESERVED) + "]")


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``Allow`` or ``Disallow`` pattern, normalised, and its priority (its length
    as Google counts it: the longest matching rule wins)."""

    priority: int
    allow: bool
    parts: tuple[str, ...]  # normalised literal runs between the "*" wildcards
    anchored: bool  # the pattern ended in "$"

    @property
    def plain(self) -> bool:
        """Whether the rule is a bare prefix: no "*", no "$"."""
        return len(self.parts) == 1 and not self.anchored

    def matches(self, key: str) -> bool:
        parts = self.parts
        first = parts[0]
        if not key.startswith(first):
            return False
        if len(parts) == 1:
            return len(key) == len(first) if self.anchored else True
        # Leftmost placement of each middle run is optimal for "*"-only globs,
        # and needs no backtracking: linear in the key for each run.
        position = len(first)
        for part in parts[1:-1]:
            found = key.find(part, position)
            if found < 0:
                return False
            position = found + len(part)
        last = parts[-1]
        if self.anchored:
            return len(key) - len(last) >= position and key.endswith(last)
        return key.find(last, position) >= 0


def compile_rule(allow: bool, pattern: str) -> Rule:
    """The rule of one ``Allow`` (``allow``) or ``Disallow`` line's ``pattern``."""
    anchored = pattern.endswith("$")
    if anchored:
        pattern = pattern[:-1]
    parts = tuple(normalize_path(part) for part in pattern.split("*"))
    priority = sum(len(part) for part in parts) + len(parts) - 1 + anchored
    return Rule(priority=priority, allow=allow, parts=parts, anchored=anchored)


def path_and_query(url: str) -> str:
    """The part of ``url`` rules match against: path and query, no fragment."""
    url = url.partition("#")[0]
    head = _URL_HEAD.match(url)
    if head is not None:
        url = url[head.end() :]
    return url if url.startswith("/") else "/" + url


def normalize_path(text: str) -> str:
    """``text`` (a path and query, or a rule's pattern) in the form rules compare in."""
    if _ALREADY_NORMAL(text):
        return text
    return _NEEDS_WORK.sub(_normal_form, text)


def _normal_form(match: re.Match[str]) -> str:
    text = match.group()
    if len(text) == 3:  # an escape: the other matches are one character
        char = chr(int(text[1:], 16))
        return char if char in _RAW else text.upper()
    return "".join(f"%{byte:02X}" for byte in text.encode("utf-8", "surrogatepass"))
