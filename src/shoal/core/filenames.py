"""Safe, portable file names for URLs: where ``export --format files`` puts each body.

A URL becomes a relative path ``host[_port]/dir/.../name``: the path's segments,
percent-decoded, with every character that is unsafe somewhere replaced by ``_``
(control characters, ``/ \\ : * ? " < > |``), ``.`` and ``..`` neutralized, no
trailing dot or space, Windows device names (``CON``, ``nul.txt``, ``COM1``...)
prefixed with ``_``, and each segment at most ``MAX_SEGMENT`` bytes of UTF-8 (a
longer one keeps its start and its extension around a hash of the whole). A path
ending in ``/`` names ``index.html``; a query becomes ``@query`` after the name.
Too deep or too long a path is flattened to one hashed name under the host.

``FileNamer`` hands out these paths one URL at a time and resolves collisions
deterministically: two URLs that map to one name (also when they differ only in
letter case, which some file systems ignore), a file where a directory is needed
or the reverse: the later URL gets ``~`` and a hash of its URL before the
extension. The same URLs in the same order always get the same names.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote, urlsplit

__all__ = ["MAX_PATH", "MAX_SEGMENT", "FileNamer", "url_path"]

MAX_SEGMENT = 120
"""Bytes of UTF-8 per path segment (file systems allow 255; room for suffixes)."""
MAX_PATH = 600
"""Bytes of UTF-8 of a whole relative path, and at most ``_MAX_DEPTH`` segments."""
_MAX_DEPTH = 32

_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]')
_DEVICE = re.compile(r"(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?", re.I)
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}$")


def _digest(text: str, n: int = 10) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def _utf8_prefix(text: str, limit: int) -> str:
    """The longest prefix of ``text`` that is at most ``limit`` bytes of UTF-8."""
    data = text.encode("utf-8", "surrogatepass")[:limit]
    return data.decode("utf-8", "ignore")


def _fits(text: str, limit: int) -> bool:
    return len(text.encode("utf-8", "surrogatepass")) <= limit


def _with_suffix(name: str, suffix: str, limit: int = MAX_SEGMENT) -> str:
    """``name`` with ``suffix`` before its extension, shortened to ``limit`` bytes."""
    match = _EXTENSION.search(name)
    stem, ext = (name[: match.start()], match.group()) if match and match.start() else (name, "")
    room = limit - len((suffix + ext).encode())
    return _utf8_prefix(stem, room) + suffix + ext


def _segment(raw: str) -> str:
    """One safe path segment from a decoded URL segment."""
    text = _UNSAFE.sub("_", raw)
    text = "".join("_" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)  # lone surrogates
    if text in ("", ".", ".."):
        text = "_" + text
    if text[-1] in ". ":
        text = text[:-1] + "_"
    if _DEVICE.fullmatch(text):
        text = "_" + text
    if not _fits(text, MAX_SEGMENT):
        text = _with_suffix(text, "~" + _digest(raw))
    return text


def url_path(url: str) -> tuple[str, ...]:
    """The relative path (its segments) a URL's body is written to, before collisions."""
    parts = urlsplit(url)
    host = parts.hostname or "_"
    if parts.port is not None:
        host = f"{host}_{parts.port}"
    segments = [unquote(s, errors="replace") for s in parts.path.split("/")[1:]]
    if not segments or segments[-1] == "":
        segments = [*segments[:-1], "index.html"] if segments else ["index.html"]
    if parts.query:
        segments[-1] = f"{segments[-1]}@{unquote(parts.query, errors='replace')}"
    path = (_segment(host), *(_segment(s) for s in segments))
    if len(path) > _MAX_DEPTH or not _fits("/".join(path), MAX_PATH):
        name = _segment(segments[-1])
        path = (path[0], _with_suffix(name, "~" + _digest(url)))
    return path


class FileNamer:
    """Unique, collision-free relative paths for a sequence of URLs (see the module doc).

    ``reserved`` names at the top level (an index file) are never handed out.
    """

    def __init__(self, *, reserved: tuple[str, ...] = ()) -> None:
        self._files: set[str] = {name.casefold() for name in reserved}
        self._dirs: set[str] = set()

    def name(self, url: str) -> str:
        """The next URL's path, relative, with ``/`` between segments."""
        path = url_path(url)
        host, last, tag = path[0], path[-1], "~" + _digest(url)
        candidates = (
            (*path[:-1], _with_suffix(last, tag)),
            # A parent is a file already: the body goes flat under its host...
            (host, _with_suffix(last, tag)),
            # ...or, if the host's name is taken by a file, under a host directory of its own.
            (_with_suffix(host, tag), last),
        )
        counter = 0
        for candidate in candidates:
            if not self._taken(path):
                break
            path = candidate
        while self._taken(path):  # hash collisions between URLs: practically never
            counter += 1
            path = (_with_suffix(host, f"{tag}-{counter}"), last)
        for depth in range(1, len(path)):
            self._dirs.add("/".join(path[:depth]).casefold())
        self._files.add("/".join(path).casefold())
        return "/".join(path)

    def _taken(self, path: tuple[str, ...]) -> bool:
        key = "/".join(path).casefold()
        if key in self._files or key in self._dirs:
            return True
        return any(
            "/".join(path[:depth]).casefold() in self._files for depth in range(1, len(path))
        )
