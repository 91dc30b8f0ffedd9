"""WARC export (WARC 1.1): a ``warcinfo`` record naming the file and the software, then a
request and a response record for every result that kept its body.

Bodies are stored decoded, so the response headers are rewritten to match what
the record holds: ``Content-Encoding`` and ``Transfer-Encoding`` are dropped and
``Content-Length`` is the body's length. warcio computes the digests.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from io import BytesIO
from typing import BinaryIO
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders  # type: ignore[import-untyped]
from warcio.warcwriter import WARCWriter  # type: ignore[import-untyped]

from shoal.core.errors import ConfigError
from shoal.core.model import FetchResult, Header
from shoal.export.outfile import OutputFile

__all__ = ["WarcWriter"]

WARC_VERSION = "1.1"
NO_BODIES = "no bodies in this job: run with --save-bodies to write WARC"

# Headers describing the bytes on the wire, not the decoded body the record holds.
_WIRE_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})


class WarcWriter:
    """Write results with bodies to ``path`` as WARC; gzipped unless it ends in ``.warc``.

    Results without a body (failures, or a job run without saving bodies) are
    skipped and counted in ``skipped``.
    """

    def __init__(self, path: str, *, gzip: bool | None = None) -> None:
        if path == "-":
            raise ConfigError("cannot write WARC to standard output; name a file")
        if gzip is None:
            gzip = not path.lower().endswith(".warc")
        self._out = OutputFile(path)
        self._file: BinaryIO = self._out.file
        self._warc = WARCWriter(self._file, gzip=gzip, warc_version=WARC_VERSION)
        with self._out.writing():
            self._warc.write_record(
                self._warc.create_warcinfo_record(
                    os.path.basename(path),
                    {
                        "software": f"shoal/{_version()}",
                        "format": "WARC File Format 1.1",
                        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/"
                        "warc-format/warc-1.1/",
                    },
                )
            )
        self.written = 0
        self.skipped = 0

    def write(self, results: Sequence[FetchResult]) -> None:
        with self._out.writing():
            for result in results:
                if result.body is None or result.status is None:
                    self.skipped += 1
                    continue
                self._write_pair(result, result.body, result.status)
            self._file.flush()

    def _write_pair(self, result: FetchResult, body: bytes, status: int) -> None:
        # A crawl's redirect row names where it went in final_url, and ends its redirects
        # with its own URL: its response is its own URL's. A fetch's final_url is the URL
        # of the response it kept.
        own = result.redirects and result.redirects[-1] == result.url
        uri = result.url if own else result.final_url or result.url
        date = _warc_date(result.fetched_at)
        response = self._warc.create_warc_record(
            uri,
            "response",
            payload=BytesIO(body),
            length=len(body),
            warc_headers_dict={"WARC-Date": date},
            http_headers=_WireHeaders(
                _status_line(status), _response_headers(result.headers, len(body)), "HTTP/1.1"
            ),
        )
        parts = urlsplit(uri)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = self._warc.create_warc_record(
            uri,
            "request",
            warc_headers_dict={"WARC-Date": date},
            http_headers=StatusAndHeaders(
                f"{result.method} {target} HTTP/1.1",
                [("Host", parts.netloc)],
                is_http_request=True,
            ),
        )
        self._warc.write_request_response_pair(request, response)
        self.written += 1

    def close(self) -> None:
        if not self.written:
            self._out.abort()
            raise ConfigError(NO_BODIES)
        self._out.commit()

    def abort(self) -> None:
        self._out.abort()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("shoal")
    except PackageNotFoundError:
        return "unknown"


def _status_line(status: int) -> str:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    return f"{status} {reason}".rstrip()


def _response_headers(headers: Sequence[Header], length: int) -> list[Header]:
    kept = [(n, v) for n, v in headers if n.lower() not in _WIRE_HEADERS]
    kept.append(("Content-Length", str(length)))
    return kept


class _WireHeaders(StatusAndHeaders):  # type: ignore[misc]
    """HTTP headers that go into a record as the server's own bytes.

    Header text is what the server sent read as Latin-1 (see docs/exports.md), so Latin-1
    gives those bytes back; warcio would percent-encode anything outside ASCII instead.
    Text Latin-1 cannot hold (from stores written before header text was Latin-1) is
    written as UTF-8, with ``surrogateescape`` restoring the bytes it stood for.
    """

    def compute_headers_buffer(self, header_filter: object = None) -> None:
        text = self.to_str(header_filter)
        try:
            head = text.encode("latin-1")
        except UnicodeEncodeError:
            head = text.encode("utf-8", "surrogateescape")
        self.headers_buff = head + b"\r\n"


def _warc_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
