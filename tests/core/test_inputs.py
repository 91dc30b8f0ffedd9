"""Tests for shoal.core.inputs: the lines of a ``shoal fetch`` input."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.core.errors import InputError
from shoal.core.inputs import MAX_LINE_BYTES, parse_line, parse_lines
from shoal.core.model import NewRequest
from shoal.core.urls import canonicalize, fingerprint


def test_url_line() -> None:
    request = parse_line("  HTTPS://Example.com:443/a/../b?y=2&x=1#top \r\n", 7)
    assert request == NewRequest(
        url="https://example.com/b?y=2&x=1",
        fingerprint=fingerprint("https://example.com/b?y=2&x=1"),
        host="example.com",
    )


def test_bytes_and_str_lines_agree() -> None:
    text = "https://bücher.de/straße?q=1"
    assert parse_line(text, 3) == parse_line(text.encode(), 3)


BLANK = ["", "   ", "\r\n", "\t\n", "# a comment", "  # indented", b"#x\n", b"\r\n"]


@pytest.mark.parametrize("line", BLANK)
def test_blank_lines_and_comments(line: str | bytes) -> None:
    assert parse_line(line, 2) is None


def test_query_options() -> None:
    line = "https://e.com/?utm_source=x&b=2&a=1"
    request = parse_line(line, 1)
    assert request is not None and request.url == "https://e.com/?utm_source=x&b=2&a=1"
    request = parse_line(line, 1, strip_params=["utm_*"], sort_query=True)
    assert request is not None and request.url == "https://e.com/?a=1&b=2"
    assert request.fingerprint == fingerprint("https://e.com/?a=1&b=2")


def test_json_line() -> None:
    line = json.dumps(
        {
            "url": "https://API.example.com/items",
            "method": "post",
            "headers": {"Accept": "application/json", "X-Token": "abc"},
            "body": '{"page": 2, "q": "café"}',
        }
    )
    request = parse_line(line, 4)
    assert request is not None
    assert request.url == "https://api.example.com/items"
    assert request.host == "api.example.com"
    assert request.method == "POST"
    assert request.headers == (("Accept", "application/json"), ("X-Token", "abc"))
    assert request.body == '{"page": 2, "q": "café"}'.encode()
    assert request.fingerprint == fingerprint(
        "https://api.example.com/items", method="POST", body=request.body
    )


def test_json_line_defaults_and_header_pairs() -> None:
    request = parse_line('{"url": "https://e.com/", "headers": [["A", "1"], ["A", "2"]]}', 1)
    assert request is not None
    assert (request.method, request.body) == ("GET", None)
    assert request.headers == (("A", "1"), ("A", "2"))
    assert parse_line('{"url": "https://e.com/", "body": null, "headers": null}', 1) is not None


def test_same_url_different_bodies_are_different_requests() -> None:
    first = parse_line('{"url": "https://e.com/", "method": "POST", "body": "a"}', 1)
    second = parse_line('{"url": "https://e.com/", "method": "POST", "body": "b"}', 2)
    assert first is not None and second is not None
    assert first.fingerprint != second.fingerprint


INVALID: list[tuple[str | bytes, str]] = [
    ("ftp://example.com/", "unsupported scheme 'ftp'"),
    ("example.com/page", "missing scheme"),
    ("http://?x", "missing host"),
    ("http://example.com:99999/", "invalid port"),
    ("https://exa\x00mple.com/", "control character U+0000 in URL at column 12"),
    ("https://example.com/a\tb", "control character U+0009 in URL at column 22"),
    ("https://example.com/\x7f", "control character U+007F"),
    (b"https://example.com/\xff\xfe", "not valid UTF-8 (byte 0xff at offset 20)"),
    (b"\x00\x01\x02PNG", "control character U+0000"),
    (b"\x89PNG\r\n", "not valid UTF-8 (byte 0x89 at offset 0)"),
    ("https://example.com/\ud800", "not valid Unicode (lone surrogate"),
    ("x\ufeffhttps://e.com/", "byte order mark inside the line"),
    ("https://e.com/" + "a" * MAX_LINE_BYTES, "line too long (65550 bytes, max 65536)"),
    (b"https://e.com/" + b"a" * MAX_LINE_BYTES, "line too long"),
    ("https://e.com/" + "é" * (MAX_LINE_BYTES // 2), "line too long"),
    ("{", "invalid JSON: Expecting property name enclosed in double quotes at column 2"),
    ('  {"url": "https://e.com/",}', "invalid JSON: Expecting property name"),
    ('{"url": "https://e.com/"} trailing', "invalid JSON: Extra data at column 27"),
    ('{"url": "https://e.com/", "methd": "GET"}', "unknown key 'methd'"),
    ('{"method": "GET"}', "missing 'url'"),
    ('{"url": 5}', "'url' must be a string"),
    ('{"url": "ftp://e.com/"}', "unsupported scheme 'ftp'"),
    ('{"url": "https://e.com/\\u0000x"}', "control character U+0000 in URL"),
    ('{"url": "https://e.com/", "url": "https://f.com/"}', "duplicate key 'url'"),
    ('{"url": "https://e.com/", "method": "GE T"}', "invalid method 'GE T'"),
    ('{"url": "https://e.com/", "method": ""}', "invalid method ''"),
    ('{"url": "https://e.com/", "method": 1}', "'method' must be a string"),
    ('{"url": "https://e.com/", "headers": "A: b"}', "'headers' must be an object or a list"),
    ('{"url": "https://e.com/", "headers": [["A"]]}', "each header must be a [name, value] pair"),
    ('{"url": "https://e.com/", "headers": {"A B": "c"}}', "invalid header name 'A B'"),
    ('{"url": "https://e.com/", "headers": {"": "c"}}', "invalid header name ''"),
    ('{"url": "https://e.com/", "headers": {"A": "x\\r\\nB: y"}}', "value contains a control"),
    ('{"url": "https://e.com/", "headers": {"A": "x\\ny"}}', "value contains a control"),
    ('{"url": "https://e.com/", "headers": {"A": 1}}', "header 'A': value must be a string"),
    ('{"url": "https://e.com/", "headers": {"A": "1", "A": "2"}}', "duplicate key 'A'"),
    ('{"url": "https://e.com/", "headers": {"Content-Length": "1"}}', "is set by shoal"),
    ('{"url": "https://e.com/", "body": {"a": 1}}', "'body' must be a string or null"),
    ('{"url": "https://e.com/", "body": "\\ud800"}', "'body' is not valid Unicode"),
]


@pytest.mark.parametrize(("line", "reason"), INVALID)
def test_invalid_lines(line: str | bytes, reason: str) -> None:
    with pytest.raises(InputError, match=re.escape(reason)) as caught:
        parse_line(line, 42)
    assert caught.value.line_no == 42
    assert str(caught.value).startswith("line 42: ")
    assert "\n" not in str(caught.value)


def test_header_values_may_contain_tabs_and_non_ascii() -> None:
    request = parse_line('{"url": "https://e.com/", "headers": {"X": "a\\tb é"}}', 1)
    assert request is not None and request.headers == (("X", "a\tb é"),)


def test_longest_line_is_accepted() -> None:
    url = "https://e.com/"
    line = url + "a" * (MAX_LINE_BYTES - len(url))
    assert parse_line(line, 1) is not None
    assert parse_line(line.encode() + b"\r\n", 1) is not None


def test_bom_is_stripped_on_the_first_line_only() -> None:
    assert parse_line("\ufeffhttps://e.com/", 1) is not None
    assert parse_line(b"\xef\xbb\xbfhttps://e.com/\r\n", 1) is not None
    assert parse_line(b'\xef\xbb\xbf{"url": "https://e.com/"}', 1) is not None
    with pytest.raises(InputError, match="byte order mark"):
        parse_line("\ufeffhttps://e.com/", 2)


def test_parse_lines_mixed_file() -> None:
    lines = [
        b"\xef\xbb\xbf# urls to fetch\r\n",
        b"https://a.example/1\r\n",
        b"\r\n",
        b"ftp://nope.example/\r\n",
        b'{"url": "https://b.example/api", "method": "POST", "body": "x"}\r\n',
        b"\xff\r\n",
        b"https://a.example/2",
    ]
    results = list(parse_lines(lines))
    assert [type(result) for result in results] == [
        NewRequest,
        InputError,
        NewRequest,
        InputError,
        NewRequest,
    ]
    errors = [result for result in results if isinstance(result, InputError)]
    assert [error.line_no for error in errors] == [4, 6]
    requests = [result for result in results if isinstance(result, NewRequest)]
    assert [r.url for r in requests] == [
        "https://a.example/1",
        "https://b.example/api",
        "https://a.example/2",
    ]


def test_parse_lines_numbers_from_start_and_strips_bom_from_first() -> None:
    results = list(parse_lines(["\ufeffhttps://e.com/", "nope"], start=10))
    assert isinstance(results[0], NewRequest)
    assert isinstance(results[1], InputError) and results[1].line_no == 11


def test_parse_lines_is_lazy() -> None:
    def lines() -> Iterator[str]:
        yield "https://e.com/1"
        raise AssertionError("read too far")

    iterator = parse_lines(lines())
    assert isinstance(next(iterator), NewRequest)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_a_request_or_a_clean_error(line: bytes) -> None:
    try:
        request = parse_line(line, 1)
    except InputError as error:
        assert error.line_no == 1 and "\n" not in str(error)
    else:
        if request is not None:
            assert canonicalize(request.url) == request.url
            assert len(request.fingerprint) == 16


@given(
    st.dictionaries(
        st.sampled_from(["url", "method", "headers", "body", "extra"]),
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=10),
            st.just("https://e.com/x"),
            st.lists(st.lists(st.text(max_size=4), max_size=3), max_size=2),
            st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
        ),
    )
)
def test_arbitrary_json_objects_give_a_request_or_a_clean_error(obj: dict[str, object]) -> None:
    try:
        request = parse_line(json.dumps(obj), 5)
    except InputError as error:
        assert error.line_no == 5
    else:
        assert request is not None and request.url.startswith("https://e.com/")
