"""Result writers: JSONL, CSV, Parquet and WARC, chosen by file suffix, safe to stream into.

A writer's ``write`` takes a batch of results; ``close`` flushes and puts the file in
place; ``abort`` removes what was written. A failure to write is an ``OutputError``. Writers
are synchronous and are driven from a thread so the event loop never waits
on the disk. Parquet (needs pyarrow) and WARC (needs warcio) live in their
own modules, imported only when asked for.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol

from shoal.core.errors import ConfigError
from shoal.core.extract import ExtractRules
from shoal.core.model import FetchResult
from shoal.export.outfile import OutputFile
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

    def abort(self) -> None: ...


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
    """Text written as UTF-8 to standard output, or to an ``OutputFile`` renamed into place
    on close: a reader never sees half a file, and a failed export leaves none behind.

    Characters UTF-8 cannot hold (lone surrogates, in values recorded by older versions)
    are written as backslash escapes: in JSON text that is the same character again.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._out: OutputFile | None = None
        if path == "-":
            self._file: IO[str] = sys.stdout
        else:
            self._out = OutputFile(path)
            self._file = io.TextIOWrapper(
                self._out.file, encoding="utf-8", errors="backslashreplace", newline=""
            )

    def _writing(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext() if self._out is None else self._out.writing()

    def close(self) -> None:
        with self._writing():
            self._file.flush()
        if self._out is not None:
            self._file.detach()  # type: ignore[attr-defined]
            self._out.commit()

    def abort(self) -> None:
        if self._out is not None:
            self._out.abort()


_UNICODE_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def _one_line_each(text: str) -> str:
    """JSON text with the line breaks of str.splitlines (and some JSON Lines readers)
    that JSON leaves raw escaped, so that one record is always one line."""
    if "\x85" in text or "\u2028" in text or "\u2029" in text:
        return text.translate(_UNICODE_LINE_BREAKS)
    return text


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
        text = "".join(dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)
        text = _one_line_each(text)
        with self._writing():
            self._file.write(text)
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
        records = _one_line_each(
            ",\n".join(
                dumps(to_record(r), ensure_ascii=False, separators=(",", ":")) for r in results
            )
        )
        with self._writing():
            self._file.write(self._separator + records)
            self._file.flush()
        self._separator = ",\n"

    def close(self) -> None:
        with self._writing():
            self._file.write("[]\n" if self._separator == "[\n" else "\n]\n")
        super().close()


class CsvWriter(_FileWriter):
    """The shared columns, then one ``fields.NAME`` column per extraction rule.

    With ``escape_formulas`` (the default) a text cell a spreadsheet would run as a
    formula (one that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return) is written with a leading ``'``, as OWASP recommends for CSV injection.
    """

    def __init__(
        self, path: str, *, extract: ExtractRules | None = None, escape_formulas: bool = True
    ) -> None:
        super().__init__(path)
        self._names = () if extract is None else extract.names
        self._cell = _escaped_cell if escape_formulas else _cell
        self._csv = csv.writer(self._file)
        with self._writing():
            self._csv.writerow((*COLUMNS, *field_columns(extract)))

    def write(self, results: Sequence[FetchResult]) -> None:
        rows = []
        names = self._names
        cell = self._cell
        for result in results:
            record = to_record(result)
            for key in ("redirects", "headers", "fields"):
                value = record[key]
                record[key] = "" if not value else json.dumps(value, ensure_ascii=False)
            row = [cell(record[c]) for c in COLUMNS]
            if names:
                fields = result.fields or {}
                row.extend(cell(scalar_text(fields.get(name))) for name in names)
            rows.append(row)
        with self._writing():
            self._csv.writerows(rows)
            self._file.flush()


def _cell(value: object) -> object:
    return "" if value is None else value


# What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _escaped_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def open_writer(
    path: str,
    fmt: str | None = None,
    *,
    extract: ExtractRules | None = None,
    with_text: bool = False,
    escape_formulas: bool = True,
) -> ResultWriter:
    """A writer for ``path``; ``extract`` (the job's rules) adds CSV columns and types
    Parquet's ``fields``; ``with_text`` adds the decoded body to JSONL; ``escape_formulas``
    is CSV's formula escaping (``CsvWriter``)."""
    kind = format_for(path, fmt)
    if with_text and kind != "jsonl":
        raise ConfigError(f"--with-text is for JSONL exports, not {kind}")
    if kind == "csv":
        return CsvWriter(path, extract=extract, escape_formulas=escape_formulas)
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
