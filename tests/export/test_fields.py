"""Extracted fields and the page encoding in every export: JSONL, CSV and Parquet."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from shoal.core.extract import ExtractRules
from shoal.core.model import FetchResult
from shoal.export.parquet import SCHEMA, schema_for
from shoal.export.records import COLUMNS, field_columns, rules_of_job
from shoal.export.writers import open_writer

RULES = ExtractRules.of(
    {"title": "css:title::text", "links": "css:a::attr(href)[]", "ids": "json:items[].id"}
)


def results() -> list[FetchResult]:
    return [
        FetchResult(
            request_id=1,
            url="http://a.test/",
            status=200,
            fetched_at=1.0,
            fields={"title": 'Café, "quoted"', "links": ["/x", "/y"], "ids": None},
            encoding="utf-8",
        ),
        FetchResult(
            request_id=2,
            url="http://a.test/api",
            status=200,
            fetched_at=2.0,
            fields={"title": None, "links": None, "ids": [1, {"deep": True}], "noindex": True},
            encoding="cp1252",
        ),
        FetchResult(request_id=3, url="http://a.test/gone", status=404, fetched_at=3.0),
        FetchResult(request_id=4, url="http://b.test/", error_kind="dns_error", fetched_at=4.0),
    ]


def write(path: Path, extract: ExtractRules | None = RULES) -> None:
    writer = open_writer(str(path), extract=extract)
    writer.write(results()[:2])
    writer.write(results()[2:])
    writer.close()


def test_jsonl_has_a_fields_object_and_the_encoding(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    write(path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert list(rows[0]) == list(COLUMNS)
    assert rows[0]["fields"] == {"title": 'Café, "quoted"', "links": ["/x", "/y"], "ids": None}
    assert rows[1]["fields"]["ids"] == [1, {"deep": True}]
    assert [r["encoding"] for r in rows] == ["utf-8", "cp1252", None, None]
    assert rows[2]["fields"] is None


def test_csv_has_one_column_per_rule_in_rule_order(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write(path)
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    header = rows[0]
    assert header == [*COLUMNS, "fields.title", "fields.links", "fields.ids"]
    assert field_columns(RULES) == ("fields.title", "fields.links", "fields.ids")
    records = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    assert records[0]["fields.title"] == 'Café, "quoted"'
    assert json.loads(records[0]["fields.links"]) == ["/x", "/y"]
    assert records[0]["fields.ids"] == ""
    assert json.loads(records[1]["fields.ids"]) == [1, {"deep": True}]
    assert json.loads(records[1]["fields"])["noindex"] is True
    assert [r["encoding"] for r in records] == ["utf-8", "cp1252", "", ""]
    assert records[3]["fields.title"] == "" and records[3]["fields"] == ""


def test_csv_without_rules_keeps_the_shared_columns(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write(path, extract=None)
    with path.open(encoding="utf-8", newline="") as file:
        assert next(csv.reader(file)) == list(COLUMNS)


def test_parquet_types_fields_as_a_struct_of_the_rules(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    write(path)
    table = pq.read_table(path)
    assert table.schema == schema_for(RULES)
    assert table.schema.field("fields").type == pa.struct(
        [
            pa.field("title", pa.string()),
            pa.field("links", pa.list_(pa.string())),
            pa.field("ids", pa.list_(pa.string())),
            pa.field("noindex", pa.bool_()),
        ]
    )
    rows = table.to_pylist()
    assert rows[0]["fields"] == {
        "title": 'Café, "quoted"',
        "links": ["/x", "/y"],
        "ids": None,
        "noindex": None,
    }
    # json: values that are not strings are kept as JSON text.
    assert rows[1]["fields"]["ids"] == ["1", '{"deep":true}']
    assert rows[1]["fields"]["noindex"] is True
    assert rows[2]["fields"] is None
    assert [r["encoding"] for r in rows] == ["utf-8", "cp1252", None, None]
    flat = table.flatten()
    assert "fields.title" in flat.column_names  # the CSV's column names


def test_parquet_without_rules_keeps_fields_as_json_text(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    write(path, extract=None)
    table = pq.read_table(path)
    assert table.schema == SCHEMA
    assert json.loads(table.column("fields")[1].as_py())["ids"] == [1, {"deep": True}]


def test_a_jobs_recorded_rules_are_read_back() -> None:
    assert rules_of_job({"extract": RULES.as_record()}) == RULES
    assert rules_of_job({"extract": None}) is None
    assert rules_of_job({}) is None
