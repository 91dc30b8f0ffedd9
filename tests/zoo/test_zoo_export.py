"""The zoo's pages exported: every format takes what the zoo's servers send (header bytes
that are not UTF-8 included), and ``-o`` holds every row the store holds."""

from __future__ import annotations

import csv
import gzip
import json
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq  # type: ignore[import-untyped]

from shoal.testweb._zoo import FORMULA_TEXT, FORMULA_TITLE

from ..cli.conftest import run_shoal
from .conftest import ZooProcess

# Endpoints that answer 200 with a page, odd headers or odd text among them.
PAGES = [
    "ok",
    "raw/non-ascii-headers",
    "raw/duplicate-headers",
    "raw/http10-close",
    "raw/ok",
    "charset/invalid-utf8",
    "charset/latin1-as-utf8",
    "charset/utf16-unlabelled",
    "binary",
]


def test_fetch_and_export_in_every_format(zoo: ZooProcess, tmp_path: Path) -> None:
    urls = [zoo.urls[name] for name in PAGES]
    (tmp_path / "urls.txt").write_text("\n".join(urls) + "\n")
    ran = run_shoal(
        "fetch", "urls.txt", "--store", "z.db", "--save-bodies", "-o", "live.jsonl", "-q",
        cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    with sqlite3.connect(tmp_path / "z.db") as conn:
        (stored,) = conn.execute("SELECT count(*) FROM results").fetchone()
    assert stored == len(PAGES)

    live = [json.loads(line) for line in (tmp_path / "live.jsonl").read_text().splitlines()]
    assert sorted(r["url"] for r in live) == sorted(urls)

    for name in ("all.jsonl", "all.csv", "all.parquet", "all.warc.gz"):
        ran = run_shoal("export", "--store", "z.db", "--job", "urls", "-o", name, cwd=tmp_path)
        assert ran.code == 0, f"{name}: {ran.stderr}"
        assert not (tmp_path / f"{name}.partial").exists()

    target = zoo.urls["raw/non-ascii-headers"]
    expected = {b"X-Latin1": b"caf\xe9", b"X-High": b"\xff\xfe\x80", b"X-Control": b"a\x01b\x7fc"}

    def check(pairs: list[tuple[str, str]]) -> None:
        got = {n.encode("latin-1"): v.encode("latin-1") for n, v in pairs}
        assert {k: got.get(k) for k in expected} == expected

    for record in live:
        if record["url"] == target:
            check(record["headers"])
    for line in (tmp_path / "all.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["url"] == target:
            check(record["headers"])
    with (tmp_path / "all.csv").open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(PAGES)
    check(json.loads(next(r for r in rows if r["url"] == target)["headers"]))
    table = pq.read_table(tmp_path / "all.parquet").to_pylist()
    assert len(table) == len(PAGES)
    row = next(r for r in table if r["url"] == target)
    check([(h["name"], h["value"]) for h in row["headers"]])
    warc = gzip.decompress((tmp_path / "all.warc.gz").read_bytes())
    for name, value in expected.items():
        assert b"\r\n" + name + b": " + value + b"\r\n" in warc


def test_csv_escapes_formulas_unless_told_not_to(zoo: ZooProcess, tmp_path: Path) -> None:
    (tmp_path / "urls.txt").write_text(zoo.urls["formula"] + "\n")
    rules = ["--extract", "title=css:title::text", "--extract", "text=css:p::text"]
    ran = run_shoal(
        "fetch", "urls.txt", "--store", "z.db", *rules, "-o", "live.csv", "-q", cwd=tmp_path
    )
    assert ran.code == 0, ran.stderr
    ran = run_shoal(
        "export", "--store", "z.db", "--job", "urls", "-o", "raw.csv", "--no-csv-escape",
        cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr

    def cells(name: str) -> dict[str, str]:
        with (tmp_path / name).open(newline="", encoding="utf-8") as file:
            (row,) = list(csv.DictReader(file))
        return row

    escaped = cells("live.csv")
    assert escaped["fields.title"] == "'" + FORMULA_TITLE
    assert escaped["fields.text"] == "'" + FORMULA_TEXT
    assert escaped["url"] == zoo.urls["formula"]  # nothing else is touched
    raw = cells("raw.csv")
    assert (raw["fields.title"], raw["fields.text"]) == (FORMULA_TITLE, FORMULA_TEXT)
