"""File names for URLs: safe on every common file system, unique, deterministic."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from shoal.core.filenames import MAX_PATH, MAX_SEGMENT, FileNamer, url_path

_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]')
_DEVICES = re.compile(r"(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?", re.I)


def _check_safe(name: str) -> None:
    assert not name.startswith("/") and "\\" not in name
    segments = name.split("/")
    for segment in segments:
        assert segment not in ("", ".", "..")
        assert not _UNSAFE.search(segment), segment
        assert segment[-1] not in ". "
        assert not _DEVICES.fullmatch(segment)
        assert len(segment.encode()) <= MAX_SEGMENT
    assert len(name.encode()) <= MAX_PATH + MAX_SEGMENT


def test_hostile_urls_get_safe_names() -> None:
    namer = FileNamer(reserved=("index.jsonl",))
    hostile = [
        "http://a.test/../../etc/passwd",
        "http://a.test/%2e%2e/%2E%2E/etc/passwd",
        "http://a.test/..%2f..%2fetc%2fpasswd",
        "http://a.test/..%5c..%5cwindows%5csystem32",
        "http://a.test//absolute//path",
        "http://a.test/CON",
        "http://a.test/aux.html",
        "http://a.test/LPT1.txt",
        "http://a.test/a%00b%0d%0ac%1b.txt",
        "http://a.test/trailing.",
        "http://a.test/" + "x" * 5000 + ".html",
        "http://a.test/" + "é" * 300,
        "http://a.test/" + "/".join(["d"] * 500),
        "http://a.test/q?" + "k=v&" * 1000,
        "http://index.jsonl/",
    ]
    names = [namer.name(url) for url in hostile]
    for name in names:
        _check_safe(name)
    assert names[0] == "a.test/_._/_._/etc/passwd"
    assert names[5] == "a.test/_CON"
    assert names[8] == "a.test/a_b__c_.txt"
    assert names[10].endswith(".html") and "~" in names[10]
    assert not names[-1].startswith("index.jsonl/")  # the index's name is reserved
    assert len({n.casefold() for n in names}) == len(names)


def test_collisions_are_resolved_in_order_and_deterministically() -> None:
    urls = [
        "http://a.test/a",  # a file named a...
        "http://a.test/a/b",  # ...so this cannot go under a directory a
        "http://a.test/A",  # differs in case only
        "http://a.test/d/x",  # a directory named d...
        "http://a.test/d",  # ...so this file cannot be d
        "http://a.test/p%3Fq",  # decodes to p?q, sanitized to p_q...
        "http://a.test/p_q",  # ...which this one also is
    ]
    first = [FileNamer().name(u) for u in urls]  # each alone: no collision
    namer = FileNamer()
    names = [namer.name(u) for u in urls]
    assert names[0] == "a.test/a" and names[3] == "a.test/d/x" and names[5] == "a.test/p_q"
    assert names[1] != first[1] and names[2] != first[2]
    assert names[4] != first[4] and names[6] != first[6]
    again = FileNamer()
    assert [again.name(u) for u in urls] == names
    _check_no_clash(names)


def _check_no_clash(names: list[str]) -> None:
    files = {n.casefold() for n in names}
    assert len(files) == len(names)
    for name in names:
        parts = name.casefold().split("/")
        for depth in range(1, len(parts)):
            assert "/".join(parts[:depth]) not in files, name


_PIECES = [*'aA._-%/\\:?*<>|" \x00\x1f\x7fé~', "..", "con", "%2e", "%2F", "%00"]
_SEGMENT = st.lists(st.sampled_from(_PIECES), max_size=8).map("".join)


@given(st.lists(st.lists(_SEGMENT, max_size=4), max_size=12))
def test_any_urls_get_safe_unique_names(paths: list[list[str]]) -> None:
    urls = ["http://h.test/" + "/".join(p) for p in paths]
    namer = FileNamer(reserved=("index.jsonl",))
    names = [namer.name(u) for u in dict.fromkeys(urls)]
    for name in names:
        _check_safe(name)
    _check_no_clash([*names, "index.jsonl"])


def test_a_query_and_a_port_are_part_of_the_name() -> None:
    assert url_path("http://a.test:8080/s?q=1") == ("a.test_8080", "s@q=1")
    assert url_path("http://a.test") == ("a.test", "index.html")
