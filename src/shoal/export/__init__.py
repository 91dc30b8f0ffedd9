"""Exports of job results: JSONL and CSV (Parquet and WARC build on the same records)."""

from shoal.export.records import COLUMNS, to_record
from shoal.export.writers import FORMATS, ResultWriter, format_for, open_writer

__all__ = ["COLUMNS", "FORMATS", "ResultWriter", "format_for", "open_writer", "to_record"]
