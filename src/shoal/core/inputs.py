"""Turning the lines of a ``shoal fetch`` input into requests.

Each line is one of:

* blank, or a comment starting with ``#`` — skipped;
* a URL (``https://example.com/page``);
* a JSON object for API harvesting::

      {"url": "https://api.example.com/items", "method": "POST",
       "headers": {"Accept": "application/json"}, "body": "{\\"page\\": 2}"}

  ``url`` is required. ``method`` (default ``GET``) is uppercased and must be
  an HTTP token. ``headers`` is an object or a list of ``[name, value]`` pairs
  (for repeated names); names must be tokens, values single-line strings, and
  the framing headers ``Content-Length`` and ``Transfer-Encoding`` are shoal's
  to set. ``body`` is a string (sent as UTF-8) or null. Other keys are errors.

Lines are parsed independently, so URL and JSON lines can be mixed. Surrounding
whitespace and ``\\r\\n`` endings are stripped, as is a UTF-8 byte order mark
at the start of the input. A bad line raises (``parse_line``) or is yielded
(``parse_lines``) as an ``InputError`` carrying its line number and a one-line
reason; what to do with it (count, report, stop under ``--strict``) is the
caller's choice. ``sniff_binary`` looks at the first bytes of a whole input and
says why it is not a URL list at all (compressed, UTF-16, binary), so that such
a file is refused with one line instead of a report per garbage line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator

import xxhash

from shoal.core.errors import InputError
from shoal.core.model import Header, NewRequest
from shoal.core.secrets import basic_authorization
from shoal.core.urls import (
    ParamFilter,
    canonical_fingerprint,
    canonical_host,
    canonicalize,
    split_userinfo,
)

__all__ = [
    "MAX_LINE_BYTES",
    "SNIFF_BYTES",
    "input_digest",
    "parse_line",
    "parse_lines",
    "request_from_object",
    "sniff_binary",
]

MAX_LINE_BYTES = 64 * 1024
"""The longest line accepted, in bytes of UTF-8 (line ending excluded)."""

SNIFF_BYTES = 8192
"""How much of the start of an input ``sniff_binary`` needs to see."""

# Formats a URL list is mistaken for, by their first bytes. UTF-32 before UTF-16:
# the UTF-32-LE byte order mark starts with the UTF-16-LE one.
_DECOMPRESS = "decompress it first"
_CONVERT = "convert it to UTF-8 first"
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed data", _DECOMPRESS),
    (b"BZh", "bzip2-compressed data", _DECOMPRESS),
    (b"\xfd7zXZ\x00", "xz-compressed data", _DECOMPRESS),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data", _DECOMPRESS),
    (b"PK\x03\x04", "a zip archive", "extract the URL list first"),
    (b"SQLite format 3\x00", "an SQLite database", "export a URL list from it first"),
    (b"\xff\xfe\x00\x00", "UTF-32 text", _CONVERT),
    (b"\x00\x00\xfe\xff", "UTF-32 text", _CONVERT),
    (b"\xff\xfe", "UTF-16 text", _CONVERT),
    (b"\xfe\xff", "UTF-16 text", _CONVERT),
)

_BOM = "\ufeff"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEADER_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # tab is allowed
_KEYS = frozenset({"url", "method", "headers", "body"})
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})


def parse_line(
    line: bytes | str,
    line_no: int,
    *,
    strip_params: ParamFilter = (),
    sort_query: bool = False,
) -> NewRequest | None:
    """Parse one input line; ``None`` for a blank line or a comment.

    The request's ``url`` is the canonical URL (see ``shoal.core.urls``), with
    the query order kept unless ``sort_query``; ``strip_params`` drops query
    parameters as ``canonicalize`` does. A byte order mark is stripped when
    ``line_no`` is 1. Raises ``InputError`` with ``line_no`` for a bad line.
    """
    return _parse_line(line, line_no, line_no == 1, strip_params, sort_query)


def parse_lines(
    lines: Iterable[bytes | str],
    *,
    start: int = 1,
    strip_params: ParamFilter = (),
    sort_query: bool = False,
) -> Iterator[NewRequest | InputError]:
    """Parse lines in order, numbering them from ``start``.

    Yields a ``NewRequest`` per URL and an ``InputError`` per bad line (as a
    value, not raised); blank lines and comments yield nothing. A byte order
    mark is stripped from the first line.
    """
    for line_no, line in enumerate(lines, start):
        try:
            request = _parse_line(line, line_no, line_no == start, strip_params, sort_query)
        except InputError as error:
            yield error
        else:
            if request is not None:
                yield request


def input_digest(chunks: Iterable[bytes | str]) -> str:
    """What identifies an input's content (a job's ``input_digest``): a hash of its bytes,
    fed in any chunking."""
    hasher = xxhash.xxh3_128()
    for chunk in chunks:
        hasher.update(chunk.encode("utf-8", "surrogateescape") if isinstance(chunk, str) else chunk)
    return hasher.hexdigest()


def sniff_binary(head: bytes) -> str | None:
    """Why an input that starts with ``head`` is not a text list of URLs, or ``None``.

    ``head`` is the first ``SNIFF_BYTES`` of the input (or all of a shorter one).
    Compressed data, archives, UTF-16/32 text and anything with a NUL byte are
    refused as a whole, as ``grep`` does, rather than reported line by line.
    """
    for magic, what, advice in _MAGIC:
        if head.startswith(magic) and (magic != b"BZh" or head[3:4].isdigit()):
            return f"{what}, not a text list of URLs; {advice}"
    nul = head.find(b"\x00", 0, SNIFF_BYTES)
    if nul >= 0:
        return f"binary data (a NUL byte at offset {nul}), not a text list of URLs"
    return None


def _parse_line(
    line: bytes | str,
    line_no: int,
    first: bool,
    strip_params: ParamFilter,
    sort_query: bool,
) -> NewRequest | None:
    try:
        text, column = _decode(line, strip_bom=first)
        if not text or text.startswith("#"):
            return None
        is_json = text.startswith("{")
        if is_json:
            url, method, headers, body = _parse_object(text, column)
        else:
            url, method, headers, body = text, "GET", (), None
        control = _CONTROL.search(url)
        if control is not None:
            where = "" if is_json else f" at column {column + control.start() + 1}"
            raise InputError(f"control character U+{ord(control.group()):04X} in URL{where}")
        canonical = canonicalize(url, strip_params=strip_params, sort_query=sort_query)
        if "@" in canonical:
            canonical, headers = _credentials_as_header(canonical, headers)
    except InputError as error:
        # The errors raised above carry no line number: their text is the reason.
        raise InputError(str(error), line_no=line_no) from None
    return NewRequest(
        url=canonical,
        fingerprint=canonical_fingerprint(canonical, method=method, body=body),
        host=canonical_host(canonical),
        method=method,
        headers=headers,
        body=body,
    )


def _credentials_as_header(url: str, headers: tuple[Header, ...]) -> tuple[str, tuple[Header, ...]]:
    """``url`` without its userinfo, which becomes the request's Basic auth (unless the
    line gives an Authorization header of its own): never stored, sent to its origin."""
    url, userinfo = split_userinfo(url)
    if userinfo is not None and not any(n.lower() == "authorization" for n, _ in headers):
        headers = (*headers, basic_authorization(userinfo))
    return url, headers


def _strip_bom(line: bytes | str) -> bytes | str:
    if isinstance(line, bytes):
        return line[3:] if line.startswith(b"\xef\xbb\xbf") else line
    return line[1:] if line.startswith(_BOM) else line


def _decode(line: bytes | str, *, strip_bom: bool) -> tuple[str, int]:
    """The line's text, stripped, and how many characters were stripped on the left."""
    if strip_bom:
        line = _strip_bom(line)
    if isinstance(line, bytes):
        line = line.rstrip(b"\r\n")
        if len(line) > MAX_LINE_BYTES:
            raise InputError(f"line too long ({len(line)} bytes, max {MAX_LINE_BYTES})")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InputError(
                f"not valid UTF-8 (byte 0x{line[error.start]:02x} at offset {error.start})"
            ) from None
    else:
        text = line.rstrip("\r\n")
        if len(text) > MAX_LINE_BYTES or not text.isascii():
            try:
                size = len(text.encode("utf-8"))
            except UnicodeEncodeError as error:
                raise InputError(
                    f"not valid Unicode (lone surrogate at column {error.start + 1})"
                ) from None
            if size > MAX_LINE_BYTES:
                raise InputError(f"line too long ({size} bytes, max {MAX_LINE_BYTES})")
    if _BOM in text:
        raise InputError(f"byte order mark inside the line (column {text.index(_BOM) + 1})")
    stripped = text.lstrip()
    return stripped.rstrip(), len(text) - len(stripped)


def _parse_object(text: str, column: int) -> tuple[str, str, tuple[Header, ...], bytes | None]:
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as error:
        raise InputError(f"invalid JSON: {error.msg} at column {column + error.colno}") from None
    except RecursionError:  # "[[[[..." within the line length limit
        raise InputError("invalid JSON: nested too deeply") from None
    if not isinstance(obj, dict):  # cannot happen for text starting with "{"
        raise InputError("a JSON line must be an object")
    return _request_fields(obj)


def request_from_object(
    obj: dict[str, object], *, strip_params: ParamFilter = (), sort_query: bool = False
) -> NewRequest:
    """The request a decoded JSON object describes, checked as a JSON input line is
    (``url``, ``method``, ``headers``, ``body``; other keys are errors). Raises
    ``InputError`` with a one-line reason and no line number."""
    url, method, headers, body = _request_fields(obj)
    control = _CONTROL.search(url)
    if control is not None:
        raise InputError(f"control character U+{ord(control.group()):04X} in URL")
    canonical = canonicalize(url, strip_params=strip_params, sort_query=sort_query)
    if "@" in canonical:
        canonical, headers = _credentials_as_header(canonical, headers)
    return NewRequest(
        url=canonical,
        fingerprint=canonical_fingerprint(canonical, method=method, body=body),
        host=canonical_host(canonical),
        method=method,
        headers=headers,
        body=body,
    )


def _request_fields(obj: dict[str, object]) -> tuple[str, str, tuple[Header, ...], bytes | None]:
    unknown = sorted(set(obj) - _KEYS)
    if unknown:
        raise InputError(f"unknown key {unknown[0]!r} (expected: {', '.join(sorted(_KEYS))})")
    if "url" not in obj:
        raise InputError("missing 'url'")
    url = obj["url"]
    if not isinstance(url, str):
        raise InputError("'url' must be a string")
    return (
        url.strip(),
        _method(obj.get("method", "GET")),
        _headers(obj.get("headers")),
        _body(obj.get("body")),
    )


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise InputError(f"duplicate key {key!r} in a JSON object")
        obj[key] = value
    return obj


def _method(value: object) -> str:
    if not isinstance(value, str):
        raise InputError("'method' must be a string")
    method = value.upper()
    if not _TOKEN.fullmatch(method):
        raise InputError(f"invalid method {value!r}")
    return method


def _headers(value: object) -> tuple[Header, ...]:
    if value is None:
        return ()
    if isinstance(value, dict):
        pairs: list[object] = [[name, item] for name, item in value.items()]
    elif isinstance(value, list):
        pairs = value
    else:
        raise InputError("'headers' must be an object or a list of [name, value] pairs")
    headers: list[Header] = []
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise InputError("each header must be a [name, value] pair")
        name, item = pair
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise InputError(f"invalid header name {name!r}")
        if name.lower() in _FRAMING_HEADERS:
            raise InputError(f"header {name!r} is set by shoal")
        if not isinstance(item, str):
            raise InputError(f"header {name!r}: value must be a string")
        if _HEADER_VALUE_BAD.search(item):
            raise InputError(f"header {name!r}: value contains a control character (CR, LF...)")
        headers.append((name, item))
    return tuple(headers)


def _body(value: object) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError("'body' must be a string or null")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape
        raise InputError("'body' is not valid Unicode") from None
