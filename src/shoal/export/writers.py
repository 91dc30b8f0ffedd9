"""Result writers: JSONL, CSV, Parquet and WARC, chosen by file suffix, safe to stream into.

A writer's ``write`` takes a batch of results; ``close`` flushes. Writers
are synchronous and are driven from a thread so the event loop never waits
on the disk. Parquet (needs pyarrow) and WARC (needs warcio) live in their
own modules, imported only when asked for.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol

from shoal.core.errors import ConfigError
from shoal.core.extract import ExtractRules
from shoal.core.model import FetchResult
from shoal.export.records import COLUMNS, body_text, field_columns, scalar_text, to_record

__all__ = [
    "EXPORT_FORMATS",
    "FORMATS",
    "SUFFIXES_TEXT",
    "ResultWriter",
    "format_for",
    "open_writer",
]

FORMATS = ("jsonl", "json", "csv", "parquet", "warc")
EXPORT_FORMATS = (*FORMATS, "files")
"""``shoal export`` also writes ``files``: a directory of bodies, never chosen by suffix."""
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".warc": "warc",
    ".warc.gz": "warc",
}

SUFFIXES_TEXT = " ".join(_SUFFIXES)
"""Every file suffix that chooses a format, for help texts."""


class ResultWriter(Protocol):
    def write(self, results: Sequence[FetchResult]) -> None: ...

    def close(self) -> None: ...


def format_for(path: str, explicit: str | None = None) -> str:
    """The export format: ``explicit`` if given, else from the file suffix."""
    if explicit:
        if explicit not in EXPORT_FORMATS:
            choices = ", ".join(EXPORT_FORMATS)
            raise ConfigError(f"unknown format {explicit!r}; choose one of {choices}")
        return explicit
    if path == "-":
        return "jsonl"
    suffixes = [s.lower() for s in Path(path).suffixes]
    # The last two suffixes first, so "crawl.warc.gz" is WARC.
    for suffix in ("".join(suffixes[-2:]), "".join(suffixes[-1:])):
        if suffix in _SUFFIXES:
            return _SUFFIXES[suffix]
    raise ConfigError(
        f"cannot tell the format of {path!r} from its suffix: use one of {SUFFIXES_TEXT}, "
        f"or choose the format with --format ({', '.join(FORMATS)})"
    )


class _FileWriter:
    def __init__(self, path: str) -> None:
        self._path = path
        if path == "-":
            self._file: IO[str] = sys.stdout
            self._tmp: str | None = None
        else:
            target = Path(path)
            if target.parent and not target.parent.exists():
                raise ConfigError(f"cannot write {path}: directory {target.parent} does not exist")
            # Write next to the target and rename on close: a reader never sees half a file
            # from an earlier run, and an interrupted export leaves the old file intact.
            self._tmp = f"{path}.partial"
            try:
                self._file = open(self._tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115
            except OSError as exc:
                raise ConfigError(f"cannot write {path}: {exc.strerror}") from None

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if self._tmp is None:
            self._file.flush()
            return
        self._file.close()
        os.replace(self._tmp, self._path)


class JsonlWriter(_FileWriter):
    """One JSON object a line; ``with_text`` adds ``text``, the decoded body (``body_text``;
    the results must be read with their bodies)."""

    def __init__(self, path: str, *, with_text: bool = False) -> None:
        super().__init__(path)
        self._with_text = with_text

    def write(self, results: Sequence[FetchResult]) -> None:
        dumps = json.dumps
        records = [to_record(r) for r in results]
        if self._with_text:
            for record, result in zip(records, results, strict=True):
                record["text"] = body_text(result)
        self._file.write(
            "".join(dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)
        )
        self._file.flush()


class JsonArrayWriter(_FileWriter):
    """One JSON array of result objects (``.json``); the array is closed on ``close``."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._separator = "[\n"

    def write(self, results: Sequence[FetchResult]) -> None:
        if not results:
            return
        dumps = json.dumps
        records = ",\n".join(
            dumps(to_record(r), ensure_ascii=False, separators=(",", ":")) for r in results
        )
        self._file.write(self._separator + records)
        self._separator = ",\n"
        self._file.flush()

    def close(self) -> None:
        self._file.write("[]\n" if self._separator == "[\n" else "\n]\n")
        super().close()


class CsvWriter(_FileWriter):
    """The shared columns, then one ``fields.NAME`` column per extraction rule."""

    def __init__(self, path: str, *, extract: ExtractRules | None = None) -> None:
        super().__init__(path)
        self._names = () if extract is None else extract.names
        self._csv = csv.writer(self._file)
        self._csv.writerow((*COLUMNS, *field_columns(extract)))

    def write(self, results: Sequence[FetchResult]) -> None:
        rows = []
        names = self._names
        for result in results:
            record = to_record(result)
            for key in ("redirects", "headers", "fields"):
                value = record[key]
                record[key] = "" if not value else json.dumps(value, ensure_ascii=False)
            row = [_cell(record[c]) for c in COLUMNS]
            if names:
                fields = result.fields or {}
                row.extend(_cell(scalar_text(fields.get(name))) for name in names)
            rows.append(row)
        self._csv.writerows(rows)
        self._file.flush()


def _cell(value: object) -> object:
    return "" if value is None else value


def open_writer(
    path: str,
    fmt: str | None = None,
    *,
    extract: ExtractRules | None = None,
    with_text: bool = False,
) -> ResultWriter:
    """A writer for ``path``; ``extract`` (the job's rules) adds CSV columns and types
    Parquet's ``fields``; ``with_text`` adds the decoded body to JSONL."""
    kind = format_for(path, fmt)
    if with_text and kind != "jsonl":
        raise ConfigError(f"--with-text is for JSONL exports, not {kind}")
    if kind == "csv":
        return CsvWriter(path, extract=extract)
    if kind == "parquet":
        from shoal.export.parquet import ParquetWriter

        return ParquetWriter(path, extract=extract)
    if kind == "warc":
        from shoal.export.warc import WarcWriter

        return WarcWriter(path)
    if kind == "json":
        return JsonArrayWriter(path)
    if kind == "files":
        from shoal.export.files import FilesWriter

        return FilesWriter(path)
    return JsonlWriter(path, with_text=with_text)
