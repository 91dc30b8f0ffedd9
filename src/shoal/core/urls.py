"""Canonical http(s) URLs, request fingerprints and politeness keys.

``canonicalize`` parses like a browser — the WHATWG URL Standard's parser for
the special schemes http and https — and then applies a few extra,
semantics-preserving normalisations so that one resource has one spelling:

* the scheme and host are lowercased; non-ASCII hosts are mapped (UTS #46,
  non-transitional) and punycoded; IPv4 hosts in any WHATWG spelling
  (``0x7f.1``, ``2130706433``) become dotted decimal; IPv6 hosts are compressed;
* the default port (80 for http, 443 for https) is dropped;
* dot segments are resolved, an empty path becomes ``/``;
* characters that must be escaped are percent-encoded as UTF-8 (spaces,
  controls, non-ASCII, and the per-component sets of the standard);
* **beyond WHATWG:** valid percent-escapes get uppercase hex digits and escapes
  of unreserved characters (``A-Z a-z 0-9 - . _ ~``) are decoded (RFC 3986
  §6.2.2); the fragment is dropped; an empty query (a bare ``?``) is dropped;
  optionally query parameters are removed by name or glob and the remaining
  parameters are sorted by name (stably).

Only http and https are crawlable; anything else raises ``InputError`` with a
one-line reason. **Beyond WHATWG**, so are host names that no resolver can look
up: with an empty label (``a..b``), a label over 63 characters, or over 253
characters in all (hosts are parsed by ``core.hostnames``). The result is
idempotent: ``canonicalize(canonicalize(u)) == canonicalize(u)``.

Why not yarl alone: yarl normalises differently from browsers (a space in the
query becomes ``+``, a stray ``%`` becomes ``%25``, numeric IPv4 spellings and
backslashes are not interpreted) and costs several microseconds per URL; links
are canonicalised by the ten thousand per second. Host mapping uses the
``idna`` package (a dependency of yarl) for its UTS #46 table.

Known deviations from UTS #46 as used by WHATWG: the CheckBidi and
CheckJoiners rules are not applied to non-ASCII labels.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Collection
from functools import lru_cache
from typing import NamedTuple, TypeAlias

import xxhash

from shoal.core.errors import InputError
from shoal.core.hostnames import parse_host, plain_host_is_canonical

__all__ = [
    "ParamFilter",
    "canonical_fingerprint",
    "canonical_host",
    "canonicalize",
    "fingerprint",
    "host_of",
    "split_userinfo",
]

ParamFilter: TypeAlias = Collection[str] | Callable[[str], bool]
"""Query parameters to drop: names (``"gclid"``), globs (``"utm_*"``) or a predicate."""

_DEFAULT_PORTS = {"http": 80, "https": 443}

# WHATWG input preprocessing: strip leading/trailing C0 controls and spaces,
# remove every tab and newline.
_C0_AND_SPACE = "".join(chr(i) for i in range(0x21))
_TAB_NEWLINE = re.compile(r"[\t\n\r]")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_AUTHORITY_END = re.compile(r"[/\\?#]")
_PATH_SEPARATOR = re.compile(r"[/\\]")
_DOT_SEGMENT = re.compile(r"(?:^|/)\.\.?(?:/|$)")

# The already-canonical common case: lowercase scheme and host, no userinfo,
# no escapes, no fragment, only characters that never need encoding.
_FAST = re.compile(
    r"(https?)://([a-z0-9-]+(?:\.[a-z0-9-]+)*)(?::([1-9][0-9]{0,4}))?"
    r"(/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*)?"
    r"(?:\?([A-Za-z0-9\-._~!$&()*+,;=:@/?]+))?"
)

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_UNRESERVED_NOT_HEX = _UNRESERVED - frozenset("0123456789ABCDEFabcdef")
_PRINTABLE = "".join(chr(i) for i in range(0x21, 0x7F))
_PCT = tuple(f"%{i:02X}" for i in range(256))
_STRAY_PERCENT = re.compile("%(?![0-9A-Fa-f]{2})")
_PIECES = re.compile(r"([/\\&])")  # "\\" is a path separator in http(s) URLs too
_REPLACEMENT_UTF8 = "\ufffd".encode()


class _Parts(NamedTuple):
    scheme: str
    userinfo: str  # "" or "user[:password]@", already encoded
    host: str
    port: int | None  # None for the scheme's default port
    path: str
    query: str | None


def _make_encoder(escape: str) -> Callable[[str], str]:
    """An encoder for one URL component.

    Printable ASCII outside ``escape`` is kept; everything else (controls,
    space, non-ASCII as UTF-8, and ``escape``) is percent-encoded. Existing
    valid escapes are normalised; a ``%`` not starting one is left alone, as
    browsers do.
    """
    keep = "".join(c for c in _PRINTABLE if c not in escape and c != "%")
    clean = re.compile("[" + re.escape(keep) + "]*").fullmatch
    dirty = re.compile("%[0-9A-Fa-f]{2}|[^" + re.escape(keep + "%") + "]")

    def replace(match: re.Match[str], decodable: frozenset[str] = _UNRESERVED) -> str:
        text = match.group()
        if len(text) == 3:  # an escape: only "%XX" is longer than one character
            char = chr(int(text[1:], 16))
            return char if char in decodable else text.upper()
        try:
            raw = text.encode()
        except UnicodeEncodeError:  # a lone surrogate, as U+FFFD like a browser
            raw = _REPLACEMENT_UTF8
        return "".join([_PCT[b] for b in raw])

    def replace_keeping_hex(match: re.Match[str]) -> str:
        return replace(match, _UNRESERVED_NOT_HEX)

    def encode(component: str) -> str:
        if clean(component):
            return component
        if _STRAY_PERCENT.search(component) is None:
            return dirty.sub(replace, component)
        # Decoding "%41" next to a stray "%" would spell a new escape ("%%41a" → "%Aa"),
        # changing the URL and breaking idempotence: decode no hex digits in such a piece.
        # Pieces are cut at "/", "\\" and "&", which no escape spans, so that dropping a path
        # segment ("..") or a query pair (strip_params) never changes how another is read.
        return "".join(
            dirty.sub(
                replace_keeping_hex if "%" in piece and _STRAY_PERCENT.search(piece) else replace,
                piece,
            )
            for piece in _PIECES.split(component)
        )

    return encode


# The WHATWG percent-encode sets (special query, path, userinfo) on top of
# C0 controls, space, DEL and non-ASCII. "^" in paths follows the current
# standard (encoded), as ada-url does.
_encode_query = _make_encoder("\"#<>'")
_encode_path = _make_encoder('"#<>?`{}^')
_encode_userinfo = _make_encoder('"#<>?`{}/:;=@[\\]^|')


def canonicalize(
    url: str,
    *,
    base: str | None = None,
    strip_params: ParamFilter = (),
    sort_query: bool = False,
) -> str:
    """Return the canonical form of an http(s) ``url``, resolved against ``base``.

    ``base`` is the document URL (or its ``<base href>``) for relative links.
    ``strip_params`` removes query parameters whose (normalised) name equals
    one of the given names or matches one of the globs (``"utm_*"``), or for
    which the predicate is true. ``sort_query`` sorts the parameters by name,
    keeping the order of repeated names. Raises ``InputError`` when the URL is
    not a valid http(s) URL.
    """
    fast = _FAST.fullmatch(url)
    if fast is not None and _fast_ok(fast):
        path = fast.group(4)
        if path is None:
            end = fast.end(3) if fast.group(3) is not None else fast.end(2)
            url = url[:end] + "/" + url[end:]
        if (strip_params or sort_query) and fast.group(5) is not None:
            head, _, raw_query = url.partition("?")
            query = _filter_query(raw_query, strip_params, sort_query)
            return head if query is None else f"{head}?{query}"
        return url
    parts = _parse(url, base)
    query = parts.query
    if query is not None and (strip_params or sort_query):
        query = _filter_query(query, strip_params, sort_query)
    return _serialize(parts, query)


def host_of(url: str) -> str:
    """The politeness key of ``url``: its lowercase ASCII (IDNA) host, no port.

    IPv4 hosts are dotted decimal; IPv6 hosts keep their brackets (``[::1]``).
    """
    fast = _FAST.fullmatch(url)
    if fast is not None and _fast_ok(fast):
        return fast.group(2)
    return _parse(url, None).host


def fingerprint(url: str, *, method: str = "GET", body: bytes | None = None) -> bytes:
    """A 16-byte xxh3-128 digest of ``method``, the canonical URL and the body.

    URLs with the same canonical form have the same fingerprint for the same
    method and body; an empty body counts as no body.
    """
    return canonical_fingerprint(canonicalize(url), method=method, body=body)


def canonical_fingerprint(
    canonical: str, *, method: str = "GET", body: bytes | None = None
) -> bytes:
    """``fingerprint`` for a URL that is already canonical (skips canonicalizing again)."""
    hasher = xxhash.xxh3_128()
    hasher.update(method.encode())
    hasher.update(b" ")
    hasher.update(canonical.encode())
    if body:
        hasher.update(b"\n")
        hasher.update(xxhash.xxh3_128_digest(body))
    digest: bytes = hasher.digest()
    return digest


def split_userinfo(url: str) -> tuple[str, str | None]:
    """``url`` without its ``user:pass@`` part, and that part (percent-encoded as in the
    URL), or None when it has none. ``url`` is canonical."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return url, None
    start = scheme_end + 3
    end = len(url)
    for stop in "/?#":
        found = url.find(stop, start)
        if 0 <= found < end:
            end = found
    at = url.rfind("@", start, end)
    if at < 0:
        return url, None
    return url[:start] + url[at + 1 :], url[start:at]


def canonical_host(canonical: str) -> str:
    """``host_of`` for a URL that is already canonical: a slice, no parsing."""
    rest = canonical[canonical.index("://") + 3 :]
    authority = rest[: rest.find("/")] if "/" in rest else rest
    authority = authority.rpartition("@")[2]
    if authority.startswith("["):
        return authority[: authority.index("]") + 1]
    return authority.partition(":")[0]


def _fast_ok(match: re.Match[str]) -> bool:
    """Whether a fast-pattern match needs none of the slow path's work."""
    if not plain_host_is_canonical(match.group(2)):
        return False
    port = match.group(3)
    if port is not None:
        number = int(port)
        if number > 65535 or number == _DEFAULT_PORTS[match.group(1)]:
            return False
    path = match.group(4)
    return path is None or "/." not in path or _DOT_SEGMENT.search(path) is None


def _serialize(parts: _Parts, query: str | None) -> str:
    port = "" if parts.port is None else f":{parts.port}"
    text = f"{parts.scheme}://{parts.userinfo}{parts.host}{port}{parts.path}"
    return text if query is None else f"{text}?{query}"


def _filter_query(query: str, strip_params: ParamFilter, sort_query: bool) -> str | None:
    pairs = [pair for pair in query.split("&") if pair]
    if strip_params:
        drop = _param_matcher(strip_params)
        pairs = [pair for pair in pairs if not drop(pair.partition("=")[0])]
    if sort_query:
        pairs.sort(key=lambda pair: pair.partition("=")[0])
    return "&".join(pairs) or None


def _param_matcher(strip_params: ParamFilter) -> Callable[[str], bool]:
    if isinstance(strip_params, str):
        return _compile_patterns((strip_params,))
    if isinstance(strip_params, Collection):
        return _compile_patterns(tuple(strip_params))
    return strip_params


@lru_cache(maxsize=64)
def _compile_patterns(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    exact: set[str] = set()
    prefixes: list[str] = []
    globs: list[Callable[[str], object]] = []
    for pattern in patterns:
        if not any(c in pattern for c in "*?["):
            exact.add(pattern)
        elif pattern.endswith("*") and not any(c in pattern[:-1] for c in "*?["):
            prefixes.append(pattern[:-1])
        else:
            globs.append(re.compile(fnmatch.translate(pattern)).match)
    prefix_tuple = tuple(prefixes)

    def matches(name: str) -> bool:
        return (
            name in exact
            or (bool(prefix_tuple) and name.startswith(prefix_tuple))
            or any(glob(name) for glob in globs)
        )

    return matches


# --- parsing (the WHATWG basic URL parser, special-scheme branches only) ---


def _parse(url: str, base: str | None) -> _Parts:
    text = url.strip(_C0_AND_SPACE)
    if "\t" in text or "\n" in text or "\r" in text:
        text = _TAB_NEWLINE.sub("", text)
    if not text and base is None:
        raise InputError("empty URL")
    match = _SCHEME.match(text)
    if match is None:
        if base is None:
            raise InputError("missing scheme (not an absolute http:// or https:// URL)")
        return _parse_relative(text, _parse_base(base))
    scheme = match.group(1).lower()
    if scheme not in _DEFAULT_PORTS:
        raise InputError(f"unsupported scheme {scheme!r}")
    rest = text[match.end() :]
    if base is not None and not rest.startswith("//"):
        base_scheme = _SCHEME.match(base.lstrip(_C0_AND_SPACE))
        if base_scheme is not None and base_scheme.group(1).lower() == scheme:
            # "http:foo" against an http base is a relative reference.
            return _parse_relative(rest, _parse_base(base))
    return _parse_authority(scheme, rest.lstrip("/\\"))


@lru_cache(maxsize=1024)
def _parse_base(base: str) -> _Parts:
    """Parse a base URL once per document rather than once per link."""
    try:
        return _parse(base, None)
    except InputError as error:
        raise InputError(f"invalid base URL: {error}") from None


def _parse_relative(text: str, base: _Parts) -> _Parts:
    if not text:
        return base
    first = text[0]
    if first in "/\\":
        if len(text) > 1 and text[1] in "/\\":
            return _parse_authority(base.scheme, text.lstrip("/\\"))
        path, query = _split_path_query(text)
        return base._replace(path=_resolve_path(path, []), query=query)
    if first == "?":
        _, query = _split_path_query(text)
        return base._replace(query=query)
    if first == "#":
        return base
    path, query = _split_path_query(text)
    segments = base.path[1:].split("/")
    segments.pop()
    return base._replace(path=_resolve_path(path, segments), query=query)


def _parse_authority(scheme: str, text: str) -> _Parts:
    end = _AUTHORITY_END.search(text)
    split = len(text) if end is None else end.start()
    authority, rest = text[:split], text[split:]
    userinfo = ""
    at = authority.rfind("@")
    if at >= 0:
        username, _, password = authority[:at].partition(":")
        authority = authority[at + 1 :]
        if username or password:
            userinfo = _encode_userinfo(username)
            if password:
                userinfo += ":" + _encode_userinfo(password)
            userinfo += "@"
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise InputError(f"invalid IPv6 host {authority!r}")
        host_text, port_text = authority[: close + 1], authority[close + 1 :]
        if port_text:
            if port_text[0] != ":":
                raise InputError(f"invalid host {authority!r}")
            port_text = port_text[1:]
    else:
        host_text, _, port_text = authority.partition(":")
    if not host_text:
        raise InputError("missing host")
    host = parse_host(host_text)
    port = _parse_port(port_text, scheme)
    path, query = _split_path_query(rest)
    return _Parts(scheme, userinfo, host, port, _resolve_path(path, []), query)


def _parse_port(text: str, scheme: str) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):
        raise InputError(f"invalid port {text!r}")
    port = int(text)
    if port > 65535:
        raise InputError(f"invalid port {text!r}: out of range")
    return None if port == _DEFAULT_PORTS[scheme] else port


def _split_path_query(text: str) -> tuple[str, str | None]:
    """Split what follows the authority; the fragment is dropped."""
    hash_at = text.find("#")
    if hash_at >= 0:
        text = text[:hash_at]
    path, question, query = text.partition("?")
    if not question:
        return path, None
    query = _encode_query(query)
    return path, query or None


def _resolve_path(path: str, segments: list[str]) -> str:
    """Append ``path``'s segments to ``segments``, resolving dot segments."""
    if path[:1] in ("/", "\\"):
        path = path[1:]
    # Escapes are normalised first: only "%2E" decodes to ".", so a segment is
    # a dot segment after normalisation exactly when it was one before.
    parts = _PATH_SEPARATOR.split(_encode_path(path))
    last = len(parts) - 1
    for index, segment in enumerate(parts):
        if segment == "..":
            if segments:
                segments.pop()
            if index == last:
                segments.append("")
        elif segment == ".":
            if index == last:
                segments.append("")
        else:
            segments.append(segment)
    return "/" + "/".join(segments)
