"""Which text encoding a fetched page is in, and its text: bytes in, never an exception.

The encoding is the first of these that names one Python can decode with:

1. a byte-order mark (UTF-8, UTF-16 LE or BE) — it cannot be mistaken, so it
   beats every label, as in browsers (WHATWG "decode") and ``core.links``;
2. the ``charset`` parameter of the HTTP ``Content-Type``;
3. the document's own declaration in its first ``PRESCAN_BYTES``: ``<meta
   charset>`` or ``<meta http-equiv="Content-Type" content="...;charset=...">``
   for HTML (outside comments), the ``<?xml ... encoding="..."?>`` declaration
   for XML;
4. UTF-8, when the body is valid UTF-8 (which ASCII is);
5. detection by charset-normalizer on the first ``DETECT_BYTES``;
6. UTF-8, with invalid bytes replaced.

Labels are read as browsers read them (WHATWG Encoding): ``iso-8859-1``,
``latin1`` and ``ascii`` mean windows-1252, ``shift_jis`` means windows-31j,
``gb2312`` means GBK, and so on; a label Python has no text codec for (or
``utf-7``, which browsers refuse) is skipped and the next source is asked. A
``<meta>`` that says UTF-16 is read as UTF-8: a document whose ``<meta>`` could
be read as ASCII is not UTF-16.

Bytes invalid in the chosen encoding become U+FFFD. ``encoding`` is always a
Python codec name (``utf-8``, ``cp1252``, ``shift_jis``...).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

__all__ = [
    "DETECT_BYTES",
    "PRESCAN_BYTES",
    "Decoded",
    "EncodingSource",
    "codec_for",
    "decode",
    "media_type",
    "sniff_encoding",
]

PRESCAN_BYTES = 4096
"""How far into the body a ``<meta charset>`` or XML declaration is looked for."""

DETECT_BYTES = 64 * 1024
"""How much of the body charset-normalizer looks at."""

EncodingSource = Literal["bom", "header", "meta", "xml", "utf-8", "detected", "fallback"]


@dataclass(frozen=True, slots=True)
class Decoded:
    """A page's text, the codec it was decoded with, and what chose that codec."""

    text: str
    encoding: str
    source: EncodingSource


_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_BOM_STARTS = frozenset(bom[:1] for bom, _ in _BOMS)

# WHATWG Encoding labels whose Python codec of the same name decodes differently
# (or does not exist); the keys are lowercase labels.
_WHATWG_LABELS = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "cp819": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-9": "cp1254",
    "iso8859-9": "cp1254",
    "latin5": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "windows-874": "cp874",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601-1989": "cp949",
    "korean": "cp949",
    "gb2312": "gbk",
    "gb_2312-80": "gbk",
    "x-gbk": "gbk",
    "chinese": "gbk",
    "big5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "iso-8859-8-i": "iso8859-8",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
    "x-mac-cyrillic": "mac-cyrillic",
    "x-user-defined": "cp1252",
    "unicode": "utf-16-le",
    "utf-16": "utf-16-le",
    "ucs-2": "utf-16-le",
}

# Never decoded with, whatever a page says: UTF-7 smuggles markup past filters, and
# Python's own codecs (escape sequences, IDNA, punycode) are no charset of the web.
_REFUSED = frozenset(
    {
        "utf-7",
        "utf_7",
        "u7",
        "unicode-1-1-utf-7",
        "csunicode11utf7",
        "unicode-escape",
        "raw-unicode-escape",
        "idna",
        "punycode",
        "undefined",
    }
)

_UTF16 = frozenset({"utf-16", "utf-16-le", "utf-16-be"})

_META = re.compile(rb"<meta(?=[\s/])([^>]*)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(rb"""([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?""")
_CHARSET_IN_CONTENT = re.compile(rb"""charset\s*=\s*["']?\s*([^\s"';]+)""", re.IGNORECASE)
_COMMENT = re.compile(rb"<!--.*?(?:-->|$)", re.DOTALL)
_XML_DECLARATION = re.compile(
    rb"""<\?xml\s[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:\-]+)["']""", re.IGNORECASE
)


@lru_cache(maxsize=256)
def media_type(content_type: str) -> tuple[str, str | None]:
    """The lowercase media type and the charset parameter of a ``Content-Type`` value."""
    kind, *params = content_type.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'").strip() or None
            break
    return kind.strip().lower(), charset


@lru_cache(maxsize=256)
def codec_for(label: str) -> str | None:
    """The Python codec for a charset label, read as browsers read it; None if unusable."""
    name = label.strip().lower()
    if not name or name in _REFUSED:
        return None
    name = _WHATWG_LABELS.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    # Not every registered codec is a text encoding (rot13, base64, zlib...).
    if not getattr(info, "_is_text_encoding", False) or info.name in _REFUSED:
        return None
    try:
        b"<html>".decode(info.name, "replace")
    except (LookupError, ValueError, UnicodeError):  # some codecs refuse "replace"
        return None
    return info.name


def sniff_encoding(
    body: bytes, content_type: str | None = None, *, detect: bool = True
) -> tuple[str, EncodingSource, int]:
    """``(codec, source, bom_length)`` for ``body``, without decoding all of it.

    With ``detect=False`` an undeclared body is taken to be UTF-8 without
    looking further (cheap: for callers that parse bytes as UTF-8 anyway).
    """
    if body[:1] in _BOM_STARTS:
        for bom, bom_codec in _BOMS:
            if body.startswith(bom):
                return bom_codec, "bom", len(bom)
    kind = ""
    if content_type:
        kind, label = media_type(content_type)
        if label is not None:
            codec = codec_for(label)
            if codec is not None:
                return codec, "header", 0
    declared = _declared_in_document(body[:PRESCAN_BYTES], kind)
    if declared is not None:
        return declared
    if not detect:
        return "utf-8", "utf-8", 0
    return _undeclared(body)


def decode(body: bytes, content_type: str | None = None) -> Decoded:
    """The text of ``body`` (see the module docstring for how its encoding is chosen)."""
    codec, source, skip = sniff_encoding(body, content_type)
    if source == "utf-8" or source == "fallback":
        return Decoded(body.decode("utf-8", "replace"), "utf-8", source)
    data = body[skip:] if skip else body
    try:
        return Decoded(data.decode(codec, "replace"), codec, source)
    except (LookupError, ValueError, UnicodeError, MemoryError):
        return Decoded(body.decode("utf-8", "replace"), "utf-8", "fallback")


def _declared_in_document(head: bytes, kind: str) -> tuple[str, EncodingSource, int] | None:
    if head[:256].lstrip().startswith(b"<?xml") or kind.endswith("xml"):
        declaration = _XML_DECLARATION.search(head)
        if declaration is not None:
            codec = codec_for(declaration.group(1).decode("ascii"))
            if codec is not None:
                return _ascii_compatible(codec), "xml", 0
    codec = _meta_declaration(head)
    return None if codec is None else (_ascii_compatible(codec), "meta", 0)


def _meta_declaration(head: bytes) -> str | None:
    """The codec of the first usable ``<meta>`` charset declaration outside comments."""
    first = _META.search(head)
    if first is None:
        return None
    # The common case: the first <meta> declares it, and no comment comes before it.
    if head.find(b"<!--", 0, first.start()) < 0:
        codec = _usable(_meta_charset(first.group(1)))
        if codec is not None:
            return codec
    if b"<!--" in head:
        head = _COMMENT.sub(b"", head)
    for meta in _META.finditer(head):
        codec = _usable(_meta_charset(meta.group(1)))
        if codec is not None:
            return codec
    return None


def _usable(label: bytes | None) -> str | None:
    return None if label is None else codec_for(label.decode("latin-1"))


def _meta_charset(attributes: bytes) -> bytes | None:
    """The charset a ``<meta>`` tag declares, from its attributes, or None."""
    http_equiv = content = None
    for attribute in _ATTRIBUTE.finditer(attributes):
        name, double, single, bare = attribute.groups()
        value = double if double is not None else single if single is not None else bare
        name = name.lower()
        if name == b"charset" and value:
            return value.strip()
        if name == b"http-equiv" and http_equiv is None:
            http_equiv = (value or b"").strip().lower()
        elif name == b"content" and content is None:
            content = value or b""
    if http_equiv == b"content-type" and content is not None:
        found = _CHARSET_IN_CONTENT.search(content)
        if found is not None:
            return found.group(1)
    return None


def _ascii_compatible(codec: str) -> str:
    # A declaration read as ASCII is in an ASCII-compatible encoding, whatever it says.
    return "utf-8" if codec in _UTF16 else codec


def _undeclared(body: bytes) -> tuple[str, EncodingSource, int]:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of a capped body is still UTF-8.
        if exc.start < len(body) - 3 or exc.reason != "unexpected end of data":
            detected = _detect(body[:DETECT_BYTES])
            return (detected, "detected", 0) if detected else ("utf-8", "fallback", 0)
    return "utf-8", "utf-8", 0


def _detect(sample: bytes) -> str | None:
    """charset-normalizer's best guess, if it decodes markup as ASCII does."""
    from charset_normalizer import from_bytes  # imported on first use: most pages never need it

    try:
        best = from_bytes(sample).best()
    except (LookupError, ValueError, UnicodeError, RecursionError, MemoryError):
        return None
    if best is None:
        return None
    codec = codec_for(best.encoding)
    if codec is None or codec == "utf-8":
        return None
    try:
        if b"<html> =".decode(codec) != "<html> =":
            return None
    except (LookupError, ValueError, UnicodeError):
        return None
    return codec
