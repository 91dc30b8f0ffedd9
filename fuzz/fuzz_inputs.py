"""atheris harness: ``shoal.core.inputs`` on arbitrary lines (URL or JSON) and input heads.

Each input is parsed as one line, as bytes and (when it decodes) as text, and sniffed as
the head of a whole input. See README.md for how to run it.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from _checks import check_canonical

    from shoal.core.errors import InputError
    from shoal.core.inputs import parse_line, sniff_binary
    from shoal.core.model import NewRequest
    from shoal.core.urls import canonical_fingerprint, canonical_host


def check(line: bytes | str, line_no: int) -> NewRequest | None:
    try:
        request = parse_line(line, line_no)
    except InputError as error:
        assert error.line_no == line_no and error.reason and "\n" not in error.reason
        return None
    if request is not None:
        check_canonical(request.url)
        assert request.host == canonical_host(request.url)
        assert request.fingerprint == canonical_fingerprint(
            request.url, method=request.method, body=request.body
        )
    return request


def test_one(data: bytes) -> None:
    reason = sniff_binary(data)
    assert reason is None or "\n" not in reason
    as_bytes = check(data, 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    assert check(text, 1) == as_bytes  # bytes and text parse alike
    check(text, 2)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one)
    atheris.Fuzz()
