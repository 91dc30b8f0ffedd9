"""``export --format files``: each saved body as a file named from its URL, plus an index.

The directory is built as ``DIR.partial`` and renamed to ``DIR`` when complete, so a
reader never sees half an export; ``DIR`` must not exist or be empty. Names come from
``shoal.core.filenames`` (safe on Linux, macOS and Windows, collisions resolved);
every file is created new (``O_EXCL``, no symlink followed), so nothing outside the
directory can be written. ``index.jsonl`` maps each URL to its file: one JSON object a
line with ``url``, ``final_url``, ``file``, ``status``, ``content_type`` and ``bytes``.
Results without a saved body (failures, jobs run without ``--save-bodies``) are
skipped and counted in ``skipped``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Sequence
from typing import IO

from shoal.core.errors import ConfigError, OutputError
from shoal.core.filenames import FileNamer
from shoal.core.model import FetchResult

__all__ = ["INDEX_NAME", "FilesWriter"]

INDEX_NAME = "index.jsonl"
NO_BODIES = "no bodies in this job: run with --save-bodies to write files"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


class FilesWriter:
    def __init__(self, directory: str) -> None:
        if directory == "-":
            raise ConfigError("the files format writes a directory; name one with -o DIR")
        self._target = directory
        if os.path.exists(directory) and not (os.path.isdir(directory) and _empty(directory)):
            raise ConfigError(f"cannot write files to {directory}: it exists and is not empty")
        parent = os.path.dirname(os.path.abspath(directory))
        if not os.path.isdir(parent):
            raise ConfigError(f"cannot write {directory}: directory {parent} does not exist")
        self._root = f"{directory.rstrip(os.sep) or directory}.partial"
        try:
            if os.path.lexists(self._root):  # left by an interrupted export
                shutil.rmtree(self._root)
            os.mkdir(self._root)
            self._index: IO[str] = open(  # noqa: SIM115
                os.path.join(self._root, INDEX_NAME), "x", encoding="utf-8", newline="\n"
            )
        except OSError as exc:
            raise ConfigError(f"cannot write {directory}: {exc.strerror or exc}") from None
        self._namer = FileNamer(reserved=(INDEX_NAME,))
        self.written = 0
        self.skipped = 0

    def write(self, results: Sequence[FetchResult]) -> None:
        try:
            self._write(results)
        except OSError as exc:
            self.abort()
            raise OutputError(f"cannot write {self._target}: {exc.strerror or exc}") from None

    def _write(self, results: Sequence[FetchResult]) -> None:
        lines = []
        for result in results:
            if result.body is None:
                self.skipped += 1
                continue
            name = self._namer.name(result.url)
            self._write_file(name, result.body)
            self.written += 1
            record = {
                "url": result.url,
                "final_url": result.final_url,
                "file": name,
                "status": result.status,
                "content_type": result.content_type,
                "bytes": len(result.body),
            }
            lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._index.write("".join(lines))

    def _write_file(self, name: str, body: bytes) -> None:
        path = os.path.join(self._root, *name.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, _CREATE, 0o644)
        with os.fdopen(fd, "wb") as file:
            file.write(body)

    def close(self) -> None:
        self._index.close()
        if not self.written and self.skipped:
            shutil.rmtree(self._root, ignore_errors=True)
            raise ConfigError(NO_BODIES)
        if os.path.isdir(self._target):
            os.rmdir(self._target)  # empty, as checked when the export began
        os.replace(self._root, self._target)

    def abort(self) -> None:
        """Leave nothing half-written: the partial directory goes."""
        with contextlib.suppress(OSError):
            self._index.close()
        shutil.rmtree(self._root, ignore_errors=True)


def _empty(directory: str) -> bool:
    with os.scandir(directory) as entries:
        return next(entries, None) is None
