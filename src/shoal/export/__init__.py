"""Exports of job results: JSONL, CSV, Parquet (``shoal.export.parquet``, needs pyarrow)
and WARC (``shoal.export.warc``, needs warcio), all through ``open_writer``."""

from shoal.export.records import COLUMNS, to_record
from shoal.export.writers import FORMATS, ResultWriter, format_for, open_writer

__all__ = ["COLUMNS", "FORMATS", "ResultWriter", "format_for", "open_writer", "to_record"]
